package runtimetest

import (
	"fmt"
	"net"
	"syscall"
	"time"
)

// Blackhole is a loopback TCP port whose connection attempts are never
// answered: a listener with a backlog of 0 whose accept queue one
// connection fills, so Linux drops every later SYN. A client connecting to
// it waits until its own connect timeout, as with a server whose host is
// gone (R1: TCP connect timeout).
type Blackhole struct {
	Port   int
	fd     int
	filler net.Conn
}

// NewBlackhole opens a blackhole on 127.0.0.1.
func NewBlackhole() (*Blackhole, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		return nil, err
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	if err := syscall.Listen(fd, 0); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return nil, err
	}
	b := &Blackhole{Port: sa.(*syscall.SockaddrInet4).Port, fd: fd}
	if b.filler, err = net.DialTimeout("tcp", b.Addr(), time.Second); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("filling the accept queue: %w", err)
	}
	return b, nil
}

// Addr is the blackhole's host:port.
func (b *Blackhole) Addr() string { return fmt.Sprintf("127.0.0.1:%d", b.Port) }

// Close closes the listener.
func (b *Blackhole) Close() {
	b.filler.Close()
	syscall.Close(b.fd)
}
