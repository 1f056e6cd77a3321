package runtimetest

import (
	"context"
	"net"
	"sync"
	"syscall"
)

// Deaf is a loopback TCP server that accepts connections and never reads
// from them, with a receive buffer as small as Linux allows: a client's
// writes soon fill the window and block. It plays a server whose process
// hangs while its kernel still completes handshakes (R1, I11).
type Deaf struct {
	ln net.Listener

	mu    sync.Mutex
	conns []net.Conn
}

// NewDeaf listens on 127.0.0.1 and accepts until Close.
func NewDeaf() (*Deaf, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024) })
		if err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	d := &Deaf{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d.mu.Lock()
			d.conns = append(d.conns, c)
			d.mu.Unlock()
		}
	}()
	return d, nil
}

// Port is the port it listens on.
func (d *Deaf) Port() int { return d.ln.Addr().(*net.TCPAddr).Port }

// Accepted is how many connections it holds.
func (d *Deaf) Accepted() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.conns)
}

// Close stops listening and closes every connection.
func (d *Deaf) Close() {
	d.ln.Close()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		c.Close()
	}
}
