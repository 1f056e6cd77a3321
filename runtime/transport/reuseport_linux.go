package transport

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePort sets SO_REUSEPORT, so that a line's connected UDP sockets and
// its listener share one port.
func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	return serr
}

// bindEarly binds a stream socket to an ephemeral port of its family before
// it connects and reports the port, so that the first request on a
// connection carries its real local port in Via and Contact (RFC 3261
// 18.1.1) while the connection is still being set up.
func bindEarly(port func(int)) func(network, address string, c syscall.RawConn) error {
	return func(network, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			var sa unix.Sockaddr = &unix.SockaddrInet4{}
			if network == "tcp6" {
				sa = &unix.SockaddrInet6{}
			}
			if serr = unix.Bind(int(fd), sa); serr != nil {
				return
			}
			got, err := unix.Getsockname(int(fd))
			switch a := got.(type) {
			case *unix.SockaddrInet4:
				port(a.Port)
			case *unix.SockaddrInet6:
				port(a.Port)
			default:
				serr = err
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
}
