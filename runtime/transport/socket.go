package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
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
	if dst.Transport == UDP {
		defer n.mu.Unlock()
		if c, err := n.udpConn(dst); err == nil {
			a := c.LocalAddr().(*net.UDPAddr)
			return a.IP.String(), a.Port
		}
		return "127.0.0.1", 9
	}
	if n.closed {
		n.mu.Unlock()
		return "127.0.0.1", 9
	}
	s := n.stream(dst)
	n.mu.Unlock()
	// The socket is bound before it connects (bindEarly): its port is known
	// within microseconds, long before the handshake ends. Only a name
	// still being resolved makes this wait, and not for long.
	select {
	case <-s.bound:
		if s.local != nil {
			return s.local.IP.String(), s.local.Port
		}
	case <-time.After(time.Second):
	}
	// Not bound: the address the kernel would pick, with the port 9
	// ("discard"); servers answer on the connection itself.
	if c, err := net.Dial("udp", dst.Addr()); err == nil {
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).IP.String(), 9
	}
	return "127.0.0.1", 9
}

// stream returns the stream to dst, dialling a new one if there is none;
// n.mu is held.
func (n *SocketNetwork) stream(dst Endpoint) *stream {
	s := n.streams[dst]
	if s == nil {
		s = &stream{dst: dst, ready: make(chan struct{}), bound: make(chan struct{})}
		n.streams[dst] = s
		go n.dial(s)
	}
	return s
}

// Send writes msg to dst.
func (n *SocketNetwork) Send(dst Endpoint, msg []byte) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return &Error{dst, net.ErrClosed}
	}
	if dst.Transport == UDP {
		c, err := n.udpConn(dst)
		n.mu.Unlock()
		if err != nil {
			return &Error{dst, err}
		}
		if _, err := c.Write(msg); err != nil {
			return &Error{dst, err} // ECONNREFUSED from an earlier ICMP
		}
		return nil
	}
	s := n.stream(dst)
	n.mu.Unlock()
	if err := s.write(n, msg); err != nil {
		return &Error{dst, err}
	}
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
		from := Endpoint{Host: addr.Addr().Unmap().String(), Port: int(addr.Port()), Transport: UDP}
		Receive(n.handler, from, buf[:k], func(b []byte) { c.WriteToUDPAddrPort(b, addr) })
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
			n.handler.HandleUnreachable(dst, &Error{dst, err})
			continue
		}
		Receive(n.handler, dst, buf[:k], func(b []byte) { c.Write(b) })
	}
}

// stream is one TCP or TLS connection to a server. Writes never block
// their caller: messages go to a bounded queue that one goroutine at a time
// writes out under a deadline. Messages sent while it connects wait in the
// same queue, in order; a failure is reported once, and the next Send
// dials again.
type stream struct {
	dst   Endpoint
	ready chan struct{} // closed once connected or failed
	bound chan struct{} // closed once local is set, or the dial failed
	once  sync.Once     // closes bound
	local *net.TCPAddr  // set before bound is closed; then read-only

	mu      sync.Mutex
	conn    net.Conn
	queue   [][]byte // waiting to be written, in order
	queued  int      // bytes in queue
	writing bool     // a writer goroutine runs
	done    bool     // the dial has ended
	dropped bool     // failed or closed; reported once
}

// Limits of a stream's writes: a server that does not read for
// streamWriteTimeout, or lets streamQueueMax bytes pile up, cannot take
// its requests and is unavailable (R1).
const (
	streamWriteTimeout = 3 * time.Second
	streamQueueMax     = 1 << 20
)

// errQueueFull is a stream whose server does not read what it is sent.
var errQueueFull = errors.New("the server does not read: write queue full")

// write queues msg; it returns an error when the stream cannot take it.
func (s *stream) write(n *SocketNetwork, msg []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.dropped:
		return net.ErrClosed
	case s.queued+len(msg) > streamQueueMax:
		return errQueueFull
	}
	s.queue = append(s.queue, msg)
	s.queued += len(msg)
	s.kick(n)
	return nil
}

// kick starts the writer if there is something to write; s.mu is held.
func (s *stream) kick(n *SocketNetwork) {
	if s.conn != nil && !s.writing && len(s.queue) > 0 {
		s.writing = true
		go s.flush(n)
	}
}

// flush writes the queue out, each batch under the write deadline; a write
// that fails or times out drops the stream.
func (s *stream) flush(n *SocketNetwork) {
	for {
		s.mu.Lock()
		batch, conn := s.queue, s.conn
		s.queue, s.queued = nil, 0
		if len(batch) == 0 || s.dropped {
			s.writing = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		for _, m := range batch {
			if _, err := conn.Write(m); err != nil {
				n.drop(s, fmt.Errorf("write: %w", err))
				s.mu.Lock()
				s.writing = false
				s.mu.Unlock()
				return
			}
		}
	}
}

// connected records the outcome of the dial and starts writing what waited.
func (s *stream) connected(n *SocketNetwork, conn net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conn, s.done = conn, true
	if conn == nil {
		s.queue, s.queued = nil, 0
		return
	}
	s.kick(n)
}

func (n *SocketNetwork) dial(s *stream) {
	ctx := n.ctx
	var conn net.Conn
	var err error
	var ip net.IP // the source address the kernel picks towards dst
	if c, err := net.Dial("udp", s.dst.Addr()); err == nil {
		ip = c.LocalAddr().(*net.UDPAddr).IP
		c.Close()
	}
	dialer := n.dialer
	if ip != nil {
		dialer.Control = bindEarly(func(port int) {
			s.local = &net.TCPAddr{IP: ip, Port: port}
			s.once.Do(func() { close(s.bound) })
		})
	}
	defer s.once.Do(func() { close(s.bound) })
	if s.dst.Transport == TLS {
		conf := n.tls.Clone()
		conf.ServerName = s.dst.ServerName
		d := tls.Dialer{NetDialer: &dialer, Config: conf}
		conn, err = d.DialContext(ctx, "tcp", s.dst.Addr())
	} else {
		conn, err = dialer.DialContext(ctx, "tcp", s.dst.Addr())
	}
	if err != nil {
		s.connected(n, nil)
		close(s.ready)
		n.drop(s, err)
		return
	}
	s.connected(n, conn)
	close(s.ready)
	n.handler.HandleFlow(s.dst, FlowAnswer{Kind: Accepted})
	parser := sip.NewParser().NewSIPStream()
	buf := make([]byte, 65535)
	between := true // at a message boundary: CRLFs here are pongs
	for {
		k, err := conn.Read(buf)
		if err != nil {
			n.drop(s, err)
			return
		}
		parser.Write(buf[:k])
		for {
			if between {
				if pongsIn(parser.Buffer()) > 0 {
					n.handler.HandleFlow(s.dst, FlowAnswer{Kind: Pong})
				}
				if b := parser.Buffer().Bytes(); len(b) == 0 || string(b) == "\r" {
					break // the rest of a CRLF, or a message, is still to come
				}
			}
			msg, _, perr := parser.ParseNext()
			if errors.Is(perr, io.ErrUnexpectedEOF) {
				between = false
				break
			}
			if perr != nil {
				// The stream's framing is lost (RFC 3261 18.3): close it; the
				// next request opens a new connection.
				n.handler.HandleUnparsable(s.dst, perr)
				n.drop(s, fmt.Errorf("unparsable stream: %w", perr))
				return
			}
			between = true
			dispatch(n.handler, s.dst, msg, func(b []byte) { s.write(n, b) })
		}
	}
}

// drop forgets a failed stream, closes it and reports the failure, once.
func (n *SocketNetwork) drop(s *stream, err error) {
	n.mu.Lock()
	if n.streams[s.dst] == s {
		delete(n.streams, s.dst)
	}
	closed := n.closed
	n.mu.Unlock()
	s.mu.Lock()
	already := s.dropped
	s.dropped = true
	s.queue, s.queued = nil, 0
	if s.conn != nil {
		s.conn.Close()
	}
	s.mu.Unlock()
	if !closed && !already {
		n.handler.HandleUnreachable(s.dst, &Error{s.dst, err})
	}
}

// Forget closes the connection to dst, if there is one, after the line
// found its server unavailable: the next request opens a new connection
// instead of waiting behind a dead one (TCP would retransmit into it for
// minutes). What was in flight on it is reported as a transport failure.
func (n *SocketNetwork) Forget(dst Endpoint) {
	if dst.Transport == UDP {
		return
	}
	n.mu.Lock()
	s := n.streams[dst]
	n.mu.Unlock()
	if s != nil {
		go n.drop(s, errors.New("closed: the server was found unavailable")) // not on the caller's lock
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
