package runtime

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// SocketNetwork is the Network of real sockets. Every line of an agent
// shares them: one connected UDP socket per server, one TCP or TLS
// connection per server.
//
// UDP sockets are connected (net.DialUDP) so that Linux reports an ICMP port
// or host unreachable as ECONNREFUSED on the socket's next read: a REGISTER
// to a closed port is declared unavailable within a round trip instead of
// after the retry budget (R1). sipgo's own UDP transport uses unconnected
// sockets, which never see ICMP; that is why the runtime sends its requests
// itself and uses sipgo for the messages.
//
// Over IPv4 the connected sockets share one local port with an unconnected
// listener (SO_REUSEPORT; the kernel gives a datagram to the socket
// connected to its sender, and the rest to the listener). So every server
// sees one Contact, and a request from anywhere reaches the line: a BYE
// that the far end's phone sends through another server after its own
// failover (R7), or a call forwarded by the server that shares the
// primary's registrations.
type SocketNetwork struct {
	tls     *tls.Config
	dialer  net.Dialer
	log     *slog.Logger
	handler Handler

	ctx    context.Context // ends pending dials on Close
	cancel context.CancelFunc

	mu       sync.Mutex
	udp      map[Endpoint]*net.UDPConn
	listener *net.UDPConn // IPv4, unconnected, on the port the connected sockets share
	streams  map[Endpoint]*stream
	closed   bool
}

// NewSocketNetwork returns a network. tlsConf holds the roots that server
// certificates are checked against; nil uses the system's.
func NewSocketNetwork(tlsConf *tls.Config, log *slog.Logger) *SocketNetwork {
	if tlsConf == nil {
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &SocketNetwork{tls: tlsConf, dialer: net.Dialer{Timeout: 32 * time.Second}, log: log, ctx: ctx, cancel: cancel,
		udp: map[Endpoint]*net.UDPConn{}, streams: map[Endpoint]*stream{}}
}

// SetHandler says where responses and failures go.
func (n *SocketNetwork) SetHandler(h Handler) { n.handler = h }

// Local returns the local address used towards dst.
func (n *SocketNetwork) Local(dst Endpoint) (string, int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if dst.Transport == TransportUDP {
		if c, err := n.udpConn(dst); err == nil {
			a := c.LocalAddr().(*net.UDPAddr)
			return a.IP.String(), a.Port
		}
	} else if s := n.streams[dst]; s != nil && s.local != nil {
		return s.local.IP.String(), s.local.Port
	}
	// A stream not yet connected: the address the kernel would pick, with the
	// port 9 ("discard"); servers answer on the connection itself.
	if c, err := net.Dial("udp", dst.Addr()); err == nil {
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).IP.String(), 9
	}
	return "127.0.0.1", 9
}

// Send writes msg to dst.
func (n *SocketNetwork) Send(dst Endpoint, msg []byte) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return &TransportError{dst, net.ErrClosed}
	}
	if dst.Transport == TransportUDP {
		c, err := n.udpConn(dst)
		n.mu.Unlock()
		if err != nil {
			return &TransportError{dst, err}
		}
		if _, err := c.Write(msg); err != nil {
			return &TransportError{dst, err} // ECONNREFUSED from an earlier ICMP
		}
		return nil
	}
	s := n.streams[dst]
	if s == nil {
		s = &stream{dst: dst, ready: make(chan struct{})}
		n.streams[dst] = s
		go n.dial(s)
	}
	n.mu.Unlock()
	s.write(msg)
	return nil
}

// udpConn returns the connected socket for dst; n.mu is held.
func (n *SocketNetwork) udpConn(dst Endpoint) (*net.UDPConn, error) {
	if c := n.udp[dst]; c != nil {
		return c, nil
	}
	raddr, err := net.ResolveUDPAddr("udp", dst.Addr())
	if err != nil {
		return nil, err
	}
	var c *net.UDPConn
	if raddr.IP.To4() != nil && n.listen() == nil {
		port := n.listener.LocalAddr().(*net.UDPAddr).Port
		d := net.Dialer{LocalAddr: &net.UDPAddr{IP: net.IPv4zero, Port: port}, Control: reusePort}
		if conn, err := d.Dial("udp4", raddr.String()); err == nil {
			c = conn.(*net.UDPConn)
		}
	}
	if c == nil { // IPv6, or no shared port here: a port of its own
		if c, err = net.DialUDP("udp", nil, raddr); err != nil {
			return nil, err
		}
	}
	n.udp[dst] = c
	go n.readUDP(dst, c)
	return c, nil
}

// listen opens the shared IPv4 listener once; n.mu is held.
func (n *SocketNetwork) listen() error {
	if n.listener != nil {
		return nil
	}
	lc := net.ListenConfig{Control: reusePort}
	pc, err := lc.ListenPacket(n.ctx, "udp4", "0.0.0.0:0")
	if err != nil {
		return err
	}
	n.listener = pc.(*net.UDPConn)
	go n.readListener(n.listener)
	return nil
}

// readListener reads what reaches the shared port from anyone but a server
// the network has a connected socket to.
func (n *SocketNetwork) readListener(c *net.UDPConn) {
	buf := make([]byte, 65535)
	for {
		k, addr, err := c.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		from := Endpoint{Host: addr.Addr().Unmap().String(), Port: int(addr.Port()), Transport: TransportUDP}
		receive(n.handler, from, buf[:k], func(b []byte) { c.WriteToUDPAddrPort(b, addr) })
	}
}

func (n *SocketNetwork) readUDP(dst Endpoint, c *net.UDPConn) {
	buf := make([]byte, 65535)
	for {
		k, err := c.Read(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// ICMP unreachable, reported once per error; the socket stays usable.
			n.handler.HandleUnreachable(dst, &TransportError{dst, err})
			continue
		}
		receive(n.handler, dst, buf[:k], func(b []byte) { c.Write(b) })
	}
}

// stream is one TCP or TLS connection to a server. Messages sent while it
// connects wait, in order; a failure is reported once, and the next Send
// dials again.
type stream struct {
	dst   Endpoint
	ready chan struct{} // closed once connected or failed
	local *net.TCPAddr

	mu      sync.Mutex
	conn    net.Conn
	waiting [][]byte
	done    bool
}

func (s *stream) write(msg []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case !s.done:
		s.waiting = append(s.waiting, msg)
	case s.conn != nil:
		s.conn.Write(msg)
	}
}

// connected records the outcome of the dial and flushes what waited.
func (s *stream) connected(conn net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conn, s.done = conn, true
	if conn != nil {
		for _, m := range s.waiting {
			conn.Write(m)
		}
	}
	s.waiting = nil
}

func (n *SocketNetwork) dial(s *stream) {
	ctx := n.ctx
	var conn net.Conn
	var err error
	if s.dst.Transport == TransportTLS {
		conf := n.tls.Clone()
		conf.ServerName = s.dst.ServerName
		d := tls.Dialer{NetDialer: &n.dialer, Config: conf}
		conn, err = d.DialContext(ctx, "tcp", s.dst.Addr())
	} else {
		conn, err = n.dialer.DialContext(ctx, "tcp", s.dst.Addr())
	}
	if err != nil {
		s.connected(nil)
		close(s.ready)
		n.drop(s, err)
		return
	}
	if a, ok := conn.LocalAddr().(*net.TCPAddr); ok {
		s.local = a
	}
	s.connected(conn)
	close(s.ready)
	parser := sip.NewParser().NewSIPStream()
	buf := make([]byte, 65535)
	for {
		k, err := conn.Read(buf)
		if err != nil {
			n.drop(s, err)
			return
		}
		perr := parser.ParseSIPStream(buf[:k], func(msg sip.Message) {
			dispatch(n.handler, s.dst, msg, func(b []byte) { s.write(b) })
		})
		if perr != nil && !errors.Is(perr, sip.ErrParseSipPartial) {
			// The stream's framing is lost (RFC 3261 18.3): close it; the
			// next request opens a new connection.
			n.handler.HandleUnparsable(s.dst, perr)
			n.drop(s, fmt.Errorf("unparsable stream: %w", perr))
			return
		}
	}
}

// drop forgets a failed stream and reports the failure.
func (n *SocketNetwork) drop(s *stream, err error) {
	n.mu.Lock()
	if n.streams[s.dst] == s {
		delete(n.streams, s.dst)
	}
	closed := n.closed
	n.mu.Unlock()
	s.mu.Lock()
	if s.conn != nil {
		s.conn.Close()
	}
	s.mu.Unlock()
	if !closed {
		n.handler.HandleUnreachable(s.dst, &TransportError{s.dst, err})
	}
}

// Close closes every socket.
func (n *SocketNetwork) Close() error {
	n.cancel()
	n.mu.Lock()
	n.closed = true
	udp, streams, listener := n.udp, n.streams, n.listener
	n.udp, n.streams, n.listener = map[Endpoint]*net.UDPConn{}, map[Endpoint]*stream{}, nil
	n.mu.Unlock()
	for _, c := range udp {
		c.Close()
	}
	if listener != nil {
		listener.Close()
	}
	for _, s := range streams {
		<-s.ready
		s.mu.Lock()
		if s.conn != nil {
			s.conn.Close()
		}
		s.mu.Unlock()
	}
	return nil
}
