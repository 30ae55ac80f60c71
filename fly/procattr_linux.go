package fly

import "syscall"

// childProcAttr puts a child in its own process group, so Destroy can signal
// everything it started. There is deliberately no parent-death signal: a
// processor outlives a control-plane crash, keeps transcribing into its
// spool, and the restarted control plane adopts it (NewLocal).
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
