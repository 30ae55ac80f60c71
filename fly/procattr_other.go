//go:build unix && !linux

package fly

import "syscall"

// childProcAttr puts a child in its own process group. A processor outlives
// a control-plane crash; the restarted control plane adopts it (NewLocal).
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
