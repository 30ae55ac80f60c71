// Command candor is the Candor interview platform: one binary that serves the
// control plane (dashboard, REST API, realtime, machines) or, with
// --role=processor, the per-interview worker.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"candor/processor/stt/evalstt"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	env := envMap(os.Environ())
	if err := dropPrivileges(env); err != nil {
		fmt.Fprintln(os.Stderr, "candor:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], env, os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "candor:", err)
		os.Exit(1)
	}
}

// run does everything main does, so end-to-end tests can call it with their
// own arguments, environment and output.
func run(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) error {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "version":
			fmt.Fprintf(stdout, "candor %s\n", version)
			return nil
		case "admin":
			return runAdmin(ctx, args[1:], env, stdout, stderr)
		case "eval-stt":
			return evalstt.Run(ctx, args[1:], env, stdout, stderr)
		case "backup":
			return runBackup(ctx, args[1:], env, stdout, stderr)
		case "restore":
			return runRestore(ctx, args[1:], env, stdout, stderr)
		case "bench":
			return runBench(ctx, args[1:], env, stdout, stderr)
		case "serve":
			args = args[1:]
		default:
			return fmt.Errorf("unknown command %q: use serve, admin bootstrap, backup, restore, eval-stt, bench or version", args[0])
		}
	}
	cfg, err := parseServeConfig(args, env, stderr)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if cfg.Role == "processor" {
		return serveProcessor(ctx, cfg, env, log)
	}
	return serveControl(ctx, cfg, env, stdout, log)
}

func envMap(kv []string) map[string]string {
	m := make(map[string]string, len(kv))
	for _, e := range kv {
		if k, v, ok := strings.Cut(e, "="); ok {
			m[k] = v
		}
	}
	return m
}
