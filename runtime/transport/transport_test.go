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
	"github.com/pion/stun/v3"

	"github.com/sipfailover/sipfailover/runtime/transport"
)

// heard is a Handler that keeps what the network hands it.
type heard struct {
	responses   chan *sip.Response
	unparsable  chan error
	unreachable chan *transport.Error
	flows       chan transport.FlowAnswer
}

func newHeard() *heard {
	return &heard{make(chan *sip.Response, 4), make(chan error, 4), make(chan *transport.Error, 4), make(chan transport.FlowAnswer, 4)}
}

func (h *heard) HandleResponse(_ transport.Endpoint, r *sip.Response)         { h.responses <- r }
func (h *heard) HandleRequest(transport.Endpoint, *sip.Request, func([]byte)) {}
func (h *heard) HandleUnparsable(_ transport.Endpoint, err error)             { h.unparsable <- err }
func (h *heard) HandleUnreachable(_ transport.Endpoint, err *transport.Error) { h.unreachable <- err }
func (h *heard) HandleFlow(_ transport.Endpoint, a transport.FlowAnswer)      { h.flows <- a }

// udpPeer is a UDP socket on loopback standing for a server, and a
// network that sends it, its handler and the server's endpoint; closed
// when the test ends.
func udpPeer(t *testing.T) (*net.UDPConn, *transport.SocketNetwork, *heard, transport.Endpoint) {
	t.Helper()
	srv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	n := transport.NewSocketNetwork(nil, nil)
	t.Cleanup(func() { n.Close() })
	h := newHeard()
	n.SetHandler(h)
	return srv, n, h, transport.Endpoint{Host: "127.0.0.1", Port: srv.LocalAddr().(*net.UDPAddr).Port, Transport: transport.UDP}
}

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
	srv, n, h, dst := udpPeer(t)
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

// TestSTUNKeepalive: R1, a STUN Binding request goes out over UDP and its
// success response comes back to the handler with the request's
// transaction ID; a STUN message that is no success response is dropped,
// and neither is taken for SIP.
func TestSTUNKeepalive(t *testing.T) {
	srv, n, h, dst := udpPeer(t)
	msg, id := transport.STUNRequest()
	if !transport.IsKeepalive(msg) {
		t.Fatal("a STUN Binding request is not taken for a keep-alive")
	}
	if err := n.Send(dst, msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	srv.SetReadDeadline(time.Now().Add(wait))
	k, from, err := srv.ReadFromUDP(buf)
	if err != nil {
		t.Fatal(err)
	}
	res := transport.STUNSuccessTo(buf[:k], stun.XORMappedAddress{IP: from.IP, Port: from.Port})
	if res == nil {
		t.Fatal("the server could not read the request as a STUN Binding request")
	}
	bindingError := stun.MustBuild(stun.NewTransactionIDSetter(id), stun.NewType(stun.MethodBinding, stun.ClassErrorResponse)).Raw
	for _, b := range [][]byte{bindingError, res} {
		if _, err := srv.WriteToUDP(b, from); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case a := <-h.flows:
		if a.Kind != transport.STUNSuccess || a.TxID != id {
			t.Errorf("flow answer %v %x, want STUN success %x", a.Kind, a.TxID, id)
		}
	case <-time.After(wait):
		t.Fatal("the STUN answer never reached the handler")
	}
	select {
	case a := <-h.flows:
		t.Errorf("a second flow answer: %v", a.Kind)
	case err := <-h.unparsable:
		t.Errorf("STUN taken for SIP: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestPongsOnAStream: R1, a CRLFCRLF ping goes out on the TCP connection;
// the server's CRLF pong reaches the handler as one, alone or after a
// message in the same segment, and the message around it is read whole.
func TestPongsOnAStream(t *testing.T) {
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	n := transport.NewSocketNetwork(nil, nil)
	defer n.Close()
	h := newHeard()
	n.SetHandler(h)
	dst := transport.Endpoint{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, Transport: transport.TCP}
	if err := n.Send(dst, transport.Ping); err != nil {
		t.Fatal(err)
	}
	ln.SetDeadline(time.Now().Add(wait))
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(wait))
	ping := make([]byte, 4)
	if _, err := io.ReadFull(conn, ping); err != nil || string(ping) != "\r\n\r\n" {
		t.Fatalf("the server read %q (%v), want CRLFCRLF", ping, err)
	}
	next := func(want transport.FlowKind) {
		t.Helper()
		select {
		case a := <-h.flows:
			if a.Kind != want {
				t.Errorf("flow answer %v, want %v", a.Kind, want)
			}
		case <-time.After(wait):
			t.Fatalf("no %v reached the handler", want)
		}
	}
	next(transport.Accepted)
	conn.Write([]byte("\r\n"))
	next(transport.Pong)
	ok := "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bKt\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:a@h>\r\n" +
		"Call-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
	conn.Write([]byte(ok + "\r\n"))
	select {
	case r := <-h.responses:
		if r.CallID().Value() != "c" {
			t.Errorf("response for call %q, want c", r.CallID().Value())
		}
	case <-time.After(wait):
		t.Fatal("the 200 never reached the handler")
	}
	conn.Write([]byte(ok)) // the next message reads whole after the pong
	select {
	case r := <-h.responses:
		if r.StatusCode != 200 {
			t.Errorf("response %d after the pong, want 200", r.StatusCode)
		}
	case err := <-h.unparsable:
		t.Fatalf("the message after a pong did not parse: %v", err)
	case <-time.After(wait):
		t.Fatal("the message after a pong never reached the handler")
	}
	next(transport.Pong)
}
