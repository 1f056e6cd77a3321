package runtime_test

import (
	"bytes"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipfailover/sipfailover/fsm"
	"github.com/sipfailover/sipfailover/runtime/runtimetest"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
)

// failures is a transport.Handler that records transport failures.
type failures struct {
	mu   sync.Mutex
	errs []*transport.Error
	got  chan struct{}
}

func (f *failures) HandleResponse(transport.Endpoint, *sip.Response)             {}
func (f *failures) HandleRequest(transport.Endpoint, *sip.Request, func([]byte)) {}
func (f *failures) HandleUnparsable(transport.Endpoint, error)                   {}
func (f *failures) HandleFlow(transport.Endpoint, transport.FlowAnswer)          {}
func (f *failures) HandleUnreachable(_ transport.Endpoint, err *transport.Error) {
	f.mu.Lock()
	f.errs = append(f.errs, err)
	f.mu.Unlock()
	select {
	case f.got <- struct{}{}:
	default:
	}
}

// TestStreamWritesNeverBlock is item 6 of the hardening issue (I11): a TCP
// server that accepts and never reads made writes block with the line's
// lock held, and wedged every line. Now Send returns at once, an error once
// the stream's queue is full, and the stream is reported unreachable and
// closed when a write cannot go out within its deadline.
func TestStreamWritesNeverBlock(t *testing.T) {
	deaf, err := runtimetest.NewDeaf()
	if err != nil {
		t.Fatal(err)
	}
	defer deaf.Close()
	network := transport.NewSocketNetwork(nil, nil)
	defer network.Close()
	h := &failures{got: make(chan struct{}, 1)}
	network.SetHandler(h)
	dst := transport.Endpoint{Host: "127.0.0.1", Port: deaf.Port(), Transport: settings.TransportTCP}
	msg := bytes.Repeat([]byte("x"), 1024)
	stop := make(chan struct{})
	refused := make(chan int, 1)
	go func() { // sends on until the stream is reported, as lines would
		n := 0
		defer func() { refused <- n }()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := network.Send(dst, msg); err != nil {
				n++
			}
			if i > 8*1024 { // 8 MiB sent: more than any socket buffer takes
				time.Sleep(time.Millisecond)
			}
		}
	}()
	select {
	case <-h.got:
	case <-time.After(30 * time.Second):
		t.Fatal("a server that never reads was never reported unreachable (or Send blocked)")
	}
	close(stop)
	select {
	case r := <-refused:
		if r == 0 {
			t.Error("no Send was refused by a stream whose server never reads")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Send blocked on a server that does not read")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if e := h.errs[0]; e.Dst != dst || !strings.Contains(e.Error(), "write") && !strings.Contains(e.Error(), "does not read") {
		t.Errorf("reported %v, want a write failure of %v", e, dst)
	}
}

// TestTCPFirstRegisterCarriesRealPort is item 3 of the strict-server issue:
// the first REGISTER over TCP advertised port 9 in Via and Contact because
// the connection was not up yet. The socket is now bound before it
// connects, so the first request names the port it comes from (RFC 3261
// 18.1.1).
func TestTCPFirstRegisterCarriesRealPort(t *testing.T) {
	for _, network := range []string{"tcp", "tls"} {
		t.Run(network, func(t *testing.T) {
			b := newBench(t, network, nil)
			b.line.Register()
			b.waitState("primary_registered", 10*time.Second)
			seen := b.primary.Seen()
			first := seen[0]
			_, port, _ := net.SplitHostPort(first.Source)
			if p, _ := strconv.Atoi(port); p == 9 || !strings.Contains(first.Via, ":"+port+";") || !strings.Contains(first.Contact, ":"+port+";") {
				t.Errorf("first REGISTER from port %s carries Via %q and Contact %q", port, first.Via, first.Contact)
			}
		})
	}
}

// TestTCPServerClosingIsFlowFailure is the flow-failure part of the
// hardening issue (RFC 5626 4.4.1): a TCP server that closes the
// registration's connection while nothing is in flight is noticed at once.
// The line registers again over a new connection; when the server is gone
// that is refused and the line is on the backup within a round trip, not
// at the next refresh.
func TestTCPServerClosingIsFlowFailure(t *testing.T) {
	b := newBench(t, "tcp", func(c *settings.LineConfig) { c.Servers[0].TTL = new(3600) })
	b.line.Register()
	b.waitState("primary_registered", 10*time.Second)
	b.primary.Stop() // closes its connections: the line's reader sees EOF
	took := b.waitState("backup_registered", 10*time.Second)
	t.Logf("on the backup %v after the primary closed its connection", took)
	b.mu.Lock()
	defer b.mu.Unlock()
	var closed bool
	for _, tr := range b.log {
		closed = closed || tr.Event == fsm.LineEventTransportClosed.String()
	}
	if !closed {
		t.Errorf("no transport.closed among the transitions: %v", b.log)
	}
}

// TestTCPConnectionRenewedAfterTimeout is item 4 of the strict-server
// issue: after a keep-alive timed out, the line kept the connection and
// wrote its failback probe into it, so after an outage the probe waited for
// TCP's retransmission. A connection whose server was found unavailable is
// now closed, and the probe goes over a new one.
func TestTCPConnectionRenewedAfterTimeout(t *testing.T) {
	b := newBench(t, "tcp", func(c *settings.LineConfig) {
		c.KeepaliveInterval = settings.Duration(200 * time.Millisecond)
		c.FailbackInterval = new(1)
	})
	b.line.Register()
	b.waitState("primary_registered", 10*time.Second)
	b.primary.SetMode(runtimetest.Silent)
	b.waitState("backup_registered", 10*time.Second)
	b.primary.SetMode(runtimetest.Up)
	b.waitState("primary_registered", 10*time.Second)
	seen := b.primary.Seen()
	first, last := seen[0], seen[len(seen)-1]
	if first.Method != "REGISTER" || last.Method != "REGISTER" || first.Source == last.Source {
		t.Errorf("the first REGISTER came from %s and the probe's from %s: want a new connection", first.Source, last.Source)
	}
}
