//go:build unix && !linux

package fly

import "syscall"

// childProcAttr puts a child in its own process group. Without Pdeathsig a
// crash can leave children behind; CleanupOrphans removes them at the next
// start-up.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
