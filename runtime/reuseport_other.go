//go:build !linux

package runtime

import (
	"errors"
	"syscall"
)

// reusePort fails where the port sharing of the Linux kernel is not known
// to work; each UDP socket then has a port of its own.
func reusePort(_, _ string, _ syscall.RawConn) error {
	return errors.New("no shared UDP port on this system")
}
