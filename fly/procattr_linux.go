package fly

import "syscall"

// childProcAttr puts a child in its own process group (so Destroy can signal
// everything it started) and has the kernel SIGKILL it if the control plane
// dies, so no processor outlives us. Pdeathsig fires when the creating OS
// thread exits; the Go runtime only retires threads of goroutines that exit
// while locked with LockOSThread, which this package never does.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
