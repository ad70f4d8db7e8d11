//go:build !linux

package redistest

import "syscall"

// SysProcAttr puts a server in its own process group where the system has
// them; only Linux can also tie its life to the process that started it.
func SysProcAttr() *syscall.SysProcAttr { return nil }
