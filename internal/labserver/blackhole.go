package labserver

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// Blackhole is a TCP port whose connection attempts are never answered: a
// listener with a backlog of 0 whose accept queue one connection fills, so
// Linux drops every later SYN. A client connecting to it waits until its
// own connect timeout, as with a server whose host is gone or a firewall
// that drops (R1: TCP connect timeout).
type Blackhole struct {
	Port   int
	addr   netip.Addr
	fd     int
	filler net.Conn
}

// NewBlackhole opens a blackhole at addr (host:port, port 0 for a free
// one), reusing the address of a listener that has just closed.
func NewBlackhole(addr string) (*Blackhole, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, err
	}
	family, sa := syscall.AF_INET, syscall.Sockaddr(&syscall.SockaddrInet4{Addr: ap.Addr().Unmap().As4(), Port: int(ap.Port())})
	if ap.Addr().Is6() && !ap.Addr().Is4In6() {
		family, sa = syscall.AF_INET6, &syscall.SockaddrInet6{Addr: ap.Addr().As16(), Port: int(ap.Port())}
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM, 0)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Blackhole, error) {
		syscall.Close(fd)
		return nil, fmt.Errorf("blackhole at %s: %w", addr, err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		return fail(err)
	}
	if err := syscall.Bind(fd, sa); err != nil {
		return fail(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		return fail(err)
	}
	got, err := syscall.Getsockname(fd)
	if err != nil {
		return fail(err)
	}
	b := &Blackhole{addr: ap.Addr(), fd: fd}
	switch s := got.(type) {
	case *syscall.SockaddrInet4:
		b.Port = s.Port
	case *syscall.SockaddrInet6:
		b.Port = s.Port
	}
	if b.filler, err = net.DialTimeout("tcp", b.Addr(), time.Second); err != nil {
		return fail(fmt.Errorf("filling the accept queue: %w", err))
	}
	return b, nil
}

// Addr is the blackhole's host:port.
func (b *Blackhole) Addr() string { return netip.AddrPortFrom(b.addr, uint16(b.Port)).String() }

// Close closes the listener.
func (b *Blackhole) Close() {
	b.filler.Close()
	syscall.Close(b.fd)
}
