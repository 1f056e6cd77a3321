package transport_test

import (
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipfailover/sipfailover/runtime/transport"
)

// heard is a Handler that keeps what the network hands it.
type heard struct {
	responses   chan *sip.Response
	unparsable  chan error
	unreachable chan *transport.Error
}

func newHeard() *heard {
	return &heard{make(chan *sip.Response, 4), make(chan error, 4), make(chan *transport.Error, 4)}
}

func (h *heard) HandleResponse(_ transport.Endpoint, r *sip.Response)         { h.responses <- r }
func (h *heard) HandleRequest(transport.Endpoint, *sip.Request, func([]byte)) {}
func (h *heard) HandleUnparsable(_ transport.Endpoint, err error)             { h.unparsable <- err }
func (h *heard) HandleUnreachable(_ transport.Endpoint, err *transport.Error) { h.unreachable <- err }

// wait gives a loopback packet time to come back: generous, for a loaded
// machine; a test that gets its answer moves on at once.
const wait = 10 * time.Second

// TestClosedUDPPortIsUnreachable: R1, a datagram to a closed port draws
// ICMP port unreachable, which the connected socket reports as such,
// naming the server.
func TestClosedUDPPortIsUnreachable(t *testing.T) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close() // the port is closed now
	n := transport.NewSocketNetwork(nil, nil)
	defer n.Close()
	h := newHeard()
	n.SetHandler(h)
	dst := transport.Endpoint{Host: "127.0.0.1", Port: port, Transport: transport.UDP}
	if err := n.Send(dst, []byte("OPTIONS sip:x SIP/2.0\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-h.unreachable:
		if e.Dst != dst || !errors.Is(e, syscall.ECONNREFUSED) {
			t.Fatalf("unreachable %v for %v, want ECONNREFUSED for %v", e.Err, e.Dst, dst)
		}
		if want := "ICMP port unreachable from UDP 127.0.0.1:"; !strings.HasPrefix(e.Error(), want) {
			t.Errorf("error %q, want it to begin %q", e.Error(), want)
		}
	case <-time.After(wait):
		t.Fatal("no ICMP port unreachable reported for a closed port")
	}
}

// TestDatagramsAreParsedAtTheEdge: a response a server sends reaches the
// handler parsed, and bytes that are no SIP message are reported as such,
// never handed on as a message.
func TestDatagramsAreParsedAtTheEdge(t *testing.T) {
	srv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	n := transport.NewSocketNetwork(nil, nil)
	defer n.Close()
	h := newHeard()
	n.SetHandler(h)
	dst := transport.Endpoint{Host: "127.0.0.1", Port: srv.LocalAddr().(*net.UDPAddr).Port, Transport: transport.UDP}
	if err := n.Send(dst, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	srv.SetReadDeadline(time.Now().Add(wait))
	_, from, err := srv.ReadFromUDP(buf)
	if err != nil {
		t.Fatal(err)
	}
	ok := "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKt\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:a@h>\r\n" +
		"Call-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
	for _, b := range []string{"not SIP at all\r\n\r\n", ok} {
		if _, err := srv.WriteToUDP([]byte(b), from); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-h.unparsable:
		if err == nil {
			t.Error("garbage reported without a reason")
		}
	case <-time.After(wait):
		t.Fatal("garbage never reported as unparsable")
	}
	select {
	case r := <-h.responses:
		if r.StatusCode != 200 || r.CallID().Value() != "c" {
			t.Errorf("response %d %q, want the 200 for call c", r.StatusCode, r.CallID().Value())
		}
	case <-time.After(wait):
		t.Fatal("the 200 never reached the handler")
	}
}

// TestErrorsReadAsAPersonSaysThem: each way a server cannot be reached
// names the server and the way.
func TestErrorsReadAsAPersonSaysThem(t *testing.T) {
	udp := transport.Endpoint{Host: "192.0.2.1", Port: 5060, Transport: transport.UDP}
	tcp := transport.Endpoint{Host: "192.0.2.1", Port: 5060, Transport: transport.TCP}
	for _, c := range []struct {
		err  *transport.Error
		want string
	}{
		{&transport.Error{Dst: udp, Err: syscall.ECONNREFUSED}, "ICMP port unreachable from UDP 192.0.2.1:5060"},
		{&transport.Error{Dst: tcp, Err: io.EOF}, "TCP 192.0.2.1:5060: connection closed by the server"},
		{&transport.Error{Dst: tcp, Err: syscall.ECONNRESET}, "TCP 192.0.2.1:5060: connection reset by the server"},
		{&transport.Error{Dst: tcp, Err: syscall.ECONNREFUSED}, "TCP 192.0.2.1:5060: connection refused"},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("%v: %q, want %q", c.err.Err, got, c.want)
		}
	}
}
