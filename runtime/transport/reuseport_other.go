//go:build !linux

package transport

import (
	"errors"
	"syscall"
)

// reusePort fails where the port sharing of the Linux kernel is not known
// to work; each UDP socket then has a port of its own.
func reusePort(_, _ string, _ syscall.RawConn) error {
	return errors.New("no shared UDP port on this system")
}

// bindEarly leaves the socket to be bound at connect here: the port is
// known once the connection is up.
func bindEarly(func(int)) func(network, address string, c syscall.RawConn) error {
	return nil
}
