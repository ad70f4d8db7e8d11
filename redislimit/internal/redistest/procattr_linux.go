package redistest

import "syscall"

// SysProcAttr makes a server die with the process that started it, even
// when that process is killed and runs no cleanup (Pdeathsig), and puts it
// in its own process group, out of the reach of signals sent to the test's.
func SysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
