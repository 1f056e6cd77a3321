package runtime_test

import (
	"slices"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/sipfailover/sipfailover/runtime/runtimetest"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
)

// TestForgedSTUNAnswerIsIgnored: R1, a STUN answer counts only with the
// transaction ID of the keep-alive it answers. A primary that answered its
// keep-alives falls silent, and someone answers each new one with another
// ID: the line fails over all the same. The same answers with the right ID
// keep it there, so the forgery is what the line refuses.
func TestForgedSTUNAnswerIsIgnored(t *testing.T) {
	for _, c := range []struct {
		name   string
		forged bool
		leaves bool // the line leaves the primary
	}{
		{"forged", true, true},
		{"genuine", false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newSimPair(t, transport.UDP, time.Millisecond, nil)
			clock, network, primary, agent, line := p.clock, p.network, p.primary, p.agent, p.line
			network.Set(primary, func(s *runtimetest.SimServer) { s.Flow = true })
			line.Register()
			clock.Advance(31 * time.Second) // the first keep-alive went and was answered
			if st := line.Status(); st.State != "primary_registered" || st.FlowAnsweredAt.IsZero() {
				t.Fatalf("before the fault: %s, keep-alive answered at %v", st.State, st.FlowAnsweredAt)
			}
			network.Set(primary, func(s *runtimetest.SimServer) { s.Mode = runtimetest.SimSilent })
			network.Tamper = func(dst transport.Endpoint, msg []byte) []runtimetest.SimSend {
				if dst.Addr() == primary.Addr() && stun.IsMessage(msg) {
					var id [12]byte
					copy(id[:], msg[8:20])
					if c.forged {
						id[0] ^= 0xff
					}
					clock.AfterFunc(time.Millisecond, func() {
						agent.HandleFlow(dst, transport.FlowAnswer{Kind: transport.STUNSuccess, TxID: id})
					})
				}
				return []runtimetest.SimSend{{Dst: dst, Msg: msg}}
			}
			clock.Advance(45 * time.Second)
			st := line.Status()
			if left := st.State != "primary_registered"; left != c.leaves {
				t.Fatalf("%s answers: the line is %s on server %d (%s), want it to leave the primary: %v", c.name, st.State, st.Server, st.LastReason, c.leaves)
			}
			if c.forged && (st.LastFailure != "flow.lost" || st.FlowKeepalivesLost != 1) {
				t.Errorf("forged answers: last failure %s (%s), %d keep-alives lost; want flow.lost, 1", st.LastFailure, st.LastReason, st.FlowKeepalivesLost)
			}
		})
	}
}

// TestSTUNRetransmissions: R1, a STUN keep-alive that gets no answer goes
// again as RFC 5389 7.2.1 says (RTO 500 ms, doubling) within its 10 s wait:
// at 0, 0.5, 1.5, 3.5 and 7.5 s, and no more; the next waits for the
// interval. Over TCP a ping goes once.
func TestSTUNRetransmissions(t *testing.T) {
	for _, c := range []struct {
		transport int
		want      []time.Duration
	}{
		{transport.UDP, []time.Duration{0, 500 * time.Millisecond, 1500 * time.Millisecond, 3500 * time.Millisecond, 7500 * time.Millisecond}},
		{transport.TCP, []time.Duration{0}},
	} {
		p := newSimPair(t, c.transport, time.Millisecond, nil)
		clock, network, primary, line := p.clock, p.network, p.primary, p.line
		line.Register()
		clock.Advance(40 * time.Second) // one keep-alive, unanswered, and its wait
		ks := network.Server(primary).Keepalives
		if len(ks) < len(c.want) {
			t.Fatalf("transport %d: keep-alives at %v, want %d", c.transport, ks, len(c.want))
		}
		var got []time.Duration
		for _, k := range ks[:len(c.want)] {
			got = append(got, k-ks[0])
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("transport %d: the first keep-alive went at %v after it, want %v", c.transport, got, c.want)
		}
		if len(ks) > len(c.want) && ks[len(c.want)]-ks[0] < 24*time.Second {
			t.Errorf("transport %d: a keep-alive at %v, before the interval's 80 %% (24 s)", c.transport, ks[len(c.want)]-ks[0])
		}
		if st := line.Status(); st.State != "primary_registered" || st.FlowKeepalivesLost != 0 {
			t.Errorf("transport %d: %s, %d keep-alives lost: a server that never answered is not failed for it", c.transport, st.State, st.FlowKeepalivesLost)
		}
	}
}

// TestFlowKeepaliveOverTLS: over a TLS connection the flow keep-alive is a
// CRLFCRLF ping inside the TLS stream, and the server's CRLF pong comes back
// through it: the line counts it answered, with its round trip, and the
// server sees no SIP request for it.
func TestFlowKeepaliveOverTLS(t *testing.T) {
	t.Parallel()
	b := newBench(t, "tls", func(c *settings.LineConfig) {
		c.NATKeepaliveInterval = new(settings.Duration(time.Second))
	})
	b.line.Register()
	b.waitState("primary_registered", 3*time.Second)
	seen := len(b.primary.Seen())
	deadline := time.Now().Add(5 * time.Second) // two keep-alives at 0.8-1 s, with a loaded machine's margin
	for time.Now().Before(deadline) && b.line.Status().FlowKeepalivesSent < 2 {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // the second's pong
	st := b.line.Status()
	if st.FlowKeepalivesSent < 2 || st.FlowAnsweredAt.IsZero() || st.FlowRTT <= 0 || st.FlowKeepalivesLost != 0 {
		t.Fatalf("keep-alives sent %d, lost %d, last answered at %v in %v: want two sent, answered, none lost",
			st.FlowKeepalivesSent, st.FlowKeepalivesLost, st.FlowAnsweredAt, st.FlowRTT)
	}
	if n := len(b.primary.Seen()) - seen; n != 0 {
		t.Errorf("the server saw %d SIP requests for the keep-alives", n)
	}
	if s := b.line.Status().State; s != "primary_registered" {
		t.Errorf("state %s, want primary_registered", s)
	}
}
