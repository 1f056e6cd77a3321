package labserver

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// listening is a quiet sipgo user agent serving on one socket, with a
// client that sends from that socket, as a server does.
type listening struct {
	ua     *sipgo.UserAgent
	client *sipgo.Client
	addr   string // host:port the socket got
	cancel context.CancelFunc
	done   chan struct{}
	ln     *tracking // TCP's, which closeListener closes alone
}

// tracking is a TCP listener that keeps the connections it accepted, so
// that a fault can reset them (Reset).
type tracking struct {
	net.Listener
	mu    sync.Mutex
	conns []*net.TCPConn
}

func (t *tracking) Accept() (net.Conn, error) {
	c, err := t.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		t.mu.Lock()
		t.conns = append(t.conns, tc)
		t.mu.Unlock()
	}
	return c, err
}

// reset ends every connection accepted so far with a TCP reset: no FIN,
// the peer's next read fails at once.
func (t *tracking) reset() {
	t.mu.Lock()
	conns := t.conns
	t.conns = nil
	t.mu.Unlock()
	for _, c := range conns {
		c.SetLinger(0)
		c.Close()
	}
}

// listen serves on network ("udp", "tcp" or "tls", with conf) at addr
// (port 0: a free one); route sets the handlers.
func listen(name, network, addr string, conf *tls.Config, route func(*sipgo.Server)) (*listening, error) {
	quiet := slog.New(slog.DiscardHandler)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(name),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quiet)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quiet)))
	if err != nil {
		return nil, err
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	if err != nil {
		return nil, err
	}
	route(srv)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	ctx = context.WithValue(ctx, sipgo.ListenReadyCtxKey, sipgo.ListenReadyFuncCtxValue(func(_, a string) { ready <- a }))
	done := make(chan struct{})
	errc := make(chan error, 1)
	// TCP listens here, so that the listener can close while the
	// connections stay open (a dropped port, fault.go).
	var ln *tracking
	if network == "tcp" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("%s: listen %s %s: %w", name, network, addr, err)
		}
		ln = &tracking{Listener: l}
		ready <- l.Addr().String()
	}
	go func() {
		defer close(done)
		defer ua.Close()
		switch network {
		case "tls":
			errc <- srv.ListenAndServeTLS(ctx, "tls", addr, conf)
		case "tcp":
			go func() { <-ctx.Done(); ln.Close() }()
			srv.ServeTCP(ln)
			<-ctx.Done() // the connections stay until stop
		default:
			errc <- srv.ListenAndServe(ctx, network, addr)
		}
	}()
	select {
	case a := <-ready:
		if network == "udp" {
			// sipgo reports ready before it files the listening socket in
			// its pool; a client that sends from that socket before then
			// would try to bind the address a second time.
			for i := 0; ; i++ {
				if c, err := ua.TransportLayer().GetConnection("udp", a); err == nil && c != nil {
					break
				}
				if i == 1000 {
					cancel()
					<-done
					return nil, fmt.Errorf("%s: the listening socket never reached the pool", name)
				}
				time.Sleep(time.Millisecond) // a test helper waiting on sipgo's goroutine
			}
		}
		host, port, _ := sip.ParseAddr(a)
		client, err := sipgo.NewClient(ua, sipgo.WithClientLogger(quiet), sipgo.WithClientHostname(host),
			sipgo.WithClientPort(port), sipgo.WithClientConnectionAddr(a))
		if err != nil {
			cancel()
			<-done
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return &listening{ua: ua, client: client, addr: a, cancel: cancel, done: done, ln: ln}, nil
	case err := <-errc:
		cancel()
		return nil, fmt.Errorf("%s: listen %s %s: %w", name, network, addr, err)
	case <-time.After(5 * time.Second):
		cancel()
		return nil, fmt.Errorf("%s: listen %s %s: timed out", name, network, addr)
	}
}

// resetConnections resets the TCP connections open now (none over UDP).
func (l *listening) resetConnections() {
	if l.ln != nil {
		l.ln.reset()
	}
}

// closeListener stops accepting TCP connections and keeps the open ones.
func (l *listening) closeListener() {
	if l.ln != nil {
		l.ln.Close()
	}
}

// stop closes the socket and waits until the server has ended.
func (l *listening) stop() {
	l.cancel()
	<-l.done
}
