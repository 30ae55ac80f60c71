//go:build unix

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// dropPrivileges makes the image work on a root-owned volume. Fly volumes
// (and most Docker volumes) mount owned by root, while Candor runs as an
// unprivileged user: the image therefore starts as root with CANDOR_RUN_AS
// set to "uid:gid"; this gives the data directory (CANDOR_DATA) and what is
// in it to that user, then drops to it for good, before anything else runs.
// It does nothing when CANDOR_RUN_AS is unset or the process is not root
// (a non-root start keeps its own identity).
func dropPrivileges(env map[string]string) error {
	spec := env["CANDOR_RUN_AS"]
	if spec == "" || os.Geteuid() != 0 {
		return nil
	}
	uid, gid, err := parseRunAs(spec)
	if err != nil {
		return fmt.Errorf("CANDOR_RUN_AS=%q: %w (set it to uid:gid, e.g. 10001:10001)", spec, err)
	}
	if uid == 0 {
		return nil
	}
	data := env["CANDOR_DATA"]
	if data == "" {
		data = "./data"
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return fmt.Errorf("CANDOR_DATA=%q cannot be created: %w", data, err)
	}
	err = filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && int(st.Uid) == uid && int(st.Gid) == gid {
			return nil
		}
		return os.Lchown(path, uid, gid)
	})
	if err != nil {
		return fmt.Errorf("giving CANDOR_DATA=%q to uid %d: %w", data, uid, err)
	}
	// Setgroups first: once the uid is dropped it is no longer allowed.
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("drop supplementary groups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("setgid %d: %w", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("setuid %d: %w", uid, err)
	}
	if os.Geteuid() != uid {
		return errors.New("still privileged after setuid")
	}
	return nil
}

func parseRunAs(spec string) (uid, gid int, err error) {
	u, g, ok := strings.Cut(spec, ":")
	if !ok {
		g = u
	}
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if err1 != nil || err2 != nil || uid < 0 || gid < 0 {
		return 0, 0, errors.New("not uid:gid")
	}
	return uid, gid, nil
}
