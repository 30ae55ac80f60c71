package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"candor/store"
	"candor/web/account"
)

// runAdmin serves `candor admin …`: operator tasks that work on the data
// directory directly, without a running server.
func runAdmin(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "bootstrap" {
		return errors.New("usage: candor admin bootstrap --tenant NAME --email E --password P [--data DIR]")
	}
	fs := flag.NewFlagSet("candor admin bootstrap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tenant := fs.String("tenant", "", "organization name")
	email := fs.String("email", "", "owner's email")
	password := fs.String("password", "", "owner's password (at least 8 characters)")
	data := fs.String("data", firstNonEmpty(env["CANDOR_DATA"], "./data"), "data directory (env CANDOR_DATA)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch {
	case *tenant == "":
		return errors.New("--tenant is required: the organization's name")
	case *email == "":
		return errors.New("--email is required: the owner's login")
	case len(*password) < 8:
		return errors.New("--password must have at least 8 characters")
	}
	if err := os.MkdirAll(*data, 0o700); err != nil {
		return fmt.Errorf("--data=%q cannot be created: %w", *data, err)
	}
	key, err := store.LoadSecretKey(*data, env["CANDOR_SECRET_KEY"])
	if err != nil {
		return fmt.Errorf("CANDOR_SECRET_KEY: %w", err)
	}
	db, err := store.Open(ctx, filepath.Join(*data, dbFileName), store.Options{SecretKey: key})
	if err != nil {
		return err
	}
	defer db.Close()
	res, err := account.Bootstrap(ctx, db, *tenant, *email, *password)
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("a tenant named %q or a user %s exists already in %s: choose another --tenant or --email", *tenant, *email, *data)
	}
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	return enc.Encode(res)
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
