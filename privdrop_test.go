//go:build unix

package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The image starts as root with CANDOR_RUN_AS=10001:10001 on a volume Fly
// mounts owned by root. Run that path for real: a root-owned data dir, the
// binary started as root, its first database write made as uid 10001.
func TestImageWorksOnARootOwnedVolume(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, as the image's entrypoint has")
	}
	dir, err := os.MkdirTemp("", "candor-volume-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The binary, where the unprivileged user can run it.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "candor")
	copyFile(t, self, bin, 0o755)
	// The volume: owned by root, with something of root's already in it.
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(filepath.Join(data, "recordings"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "recordings", "old.webm"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	bootstrap := func(asUser bool, runAs string) (string, error) {
		cmd := exec.Command(bin, "admin", "bootstrap", "--tenant", "Acme", "--email", "owner@acme.test", "--password", "correct horse battery", "--data", data)
		cmd.Env = append(os.Environ(), "CANDOR_TEST_AS_MAIN=1", "CANDOR_DATA="+data, "CANDOR_RUN_AS="+runAs)
		if asUser {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 10001, Gid: 10001}}
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// What a fresh deploy did before: the unprivileged user cannot write.
	if out, err := bootstrap(true, ""); err == nil {
		t.Fatalf("uid 10001 wrote to a root-owned data dir without the fix-up; the test does not test:\n%s", out)
	}
	out, err := bootstrap(false, "10001:10001")
	if err != nil || !strings.Contains(out, `"api_key"`) {
		t.Fatalf("bootstrap as root with CANDOR_RUN_AS: %v\n%s", err, out)
	}
	err = filepath.Walk(data, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if st := info.Sys().(*syscall.Stat_t); st.Uid != 10001 || st.Gid != 10001 {
			t.Errorf("%s is owned by %d:%d, want 10001:10001", path, st.Uid, st.Gid)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(data, "candor.db")); err != nil {
		t.Errorf("no database: %v", err)
	}
	// The process itself ran unprivileged: a later start as the user works.
	if out, err := bootstrap(true, ""); err != nil && !strings.Contains(out, "exists") && !strings.Contains(out, "taken") {
		t.Errorf("a second bootstrap as uid 10001 on the fixed dir: %v\n%s", err, out)
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
