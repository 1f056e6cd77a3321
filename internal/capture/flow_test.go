package capture

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// TestFlowKeepalivesExplainAFailover: a phone that leaves its primary
// without a REGISTER failing there has left it for a reason when a flow
// keep-alive (RFC 5626 4.4, a STUN Binding request) found the primary
// gone: it drew ICMP port unreachable, or the primary, which had answered
// one, left the next unanswered for 10 s. Where the primary never
// answered keep-alives, its silence is no reason, and I3 holds the phone
// to it. Keep-alives are no SIP: none is a problem of the capture.
func TestFlowKeepalivesExplainAFailover(t *testing.T) {
	const s = time.Second
	for _, c := range []struct {
		name     string
		answered bool // the primary answered the first keep-alive
		icmp     bool // the second draws ICMP
		want     string
	}{
		{"unanswered after an answer", true, false, Held},
		{"ICMP for a keep-alive", false, true, Held},
		{"never answered", false, false, Violated},
	} {
		t.Run(c.name, func(t *testing.T) {
			cr := newCrafter(t)
			cr.register(0, primary, "reg", 1, 3600, false)
			first := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
			cr.udp(25*s, phone, primary, string(first.Raw))
			if c.answered {
				ok := stun.MustBuild(stun.NewTransactionIDSetter(first.TransactionID), stun.BindingSuccess, stun.Fingerprint)
				cr.udp(25*s+10*time.Millisecond, primary, phone, string(ok.Raw))
			}
			second := string(stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint).Raw)
			cr.udp(50*s, phone, primary, second)
			failover := 60 * s
			if c.icmp {
				cr.icmp(50*s+10*time.Millisecond, primary, second)
				failover = 50*s + 20*time.Millisecond
			} else {
				for _, d := range []time.Duration{500, 1500, 3500, 7500} {
					cr.udp(50*s+d*time.Millisecond, phone, primary, second)
				}
			}
			cr.register(failover, backup, "reg", 2, 3600, false)
			a, err := Analyze(bytes.NewReader(cr.bytes()), settings())
			if err != nil {
				t.Fatal(err)
			}
			if len(a.Problems) > 0 {
				t.Errorf("keep-alives reported as problems: %v", a.Problems)
			}
			if v := cr.verdicts()["I3"]; v.Status != c.want {
				t.Errorf("I3 %s (%s %v), want %s", v.Status, v.Why, v.Findings, c.want)
			}
		})
	}
}

// TestFlowAnsweredOnceStaysAnswered: a phone need not judge every
// keep-alive (ours gives up those it sent while every server had failed
// when it registers again), so one that went unanswered does not make the
// server one that never answers: when a later one goes unanswered too, the
// phone may leave the server for it.
func TestFlowAnsweredOnceStaysAnswered(t *testing.T) {
	const s = time.Second
	cr := newCrafter(t)
	cr.register(0, primary, "reg", 1, 3600, false)
	ping := func(at time.Duration) stun.Message {
		m := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
		for _, d := range []time.Duration{0, 500, 1500, 3500, 7500} {
			cr.udp(at+d*time.Millisecond, phone, primary, string(m.Raw))
		}
		return *m
	}
	first := ping(25 * s)
	ok := stun.MustBuild(stun.NewTransactionIDSetter(first.TransactionID), stun.BindingSuccess, stun.Fingerprint)
	cr.udp(25*s+10*time.Millisecond, primary, phone, string(ok.Raw))
	ping(50 * s)   // unanswered; the phone stays
	ping(1000 * s) // unanswered; the phone leaves
	cr.register(1010*s, backup, "reg", 2, 3600, false)
	if v := cr.verdicts()["I3"]; v.Status != Held {
		t.Errorf("I3 %s (%s %v), want %s", v.Status, v.Why, v.Findings, Held)
	}
}

// TestFlowProbesAreNoRound: while every server has failed, a phone that
// keeps its flows alive over TCP opens a connection to each server it has
// none to, all at once, and the closed ones refuse them. Those are no
// round's tries: a round of successive registration tries one server at a
// time, so the refusal at the primary does not make the connection sent
// beside it to the third server a failover that skipped the backup (I2).
func TestFlowProbesAreNoRound(t *testing.T) {
	third := netip.MustParseAddrPort("127.0.0.4:5060")
	cr := newCrafter(t)
	ms := time.Millisecond
	// The first round: the primary and the third refuse, the backup 503s.
	cr.refused(0, ms, phonePort(40001), primary)
	cr.accepted(2*ms, phonePort(40002), backup)
	cr.tcpRegister(4*ms, phonePort(40002), backup, 1, 3600, 503)
	cr.refused(6*ms, ms, phonePort(40003), third)
	// 30 s on, the flow keep-alives: a ping on the backup's connection, and
	// connections to the two others, both refused.
	at := 30 * time.Second
	cr.tcp(at, phonePort(40002), backup, "\r\n\r\n", false, false)
	cr.refused(at, ms, phonePort(40004), primary)
	cr.refused(at, ms, phonePort(40005), third)
	// The back-off ends: the primary refuses, the backup takes it.
	cr.refused(at+500*ms, ms, phonePort(40006), primary)
	cr.tcpRegister(at+502*ms, phonePort(40002), backup, 2, 3600, 200)

	s := settings()
	s.Servers = append(s.Servers, third)
	cr.holds(s)
}

// TestFlowLostLetsTheBindingGo: a phone whose keep-alive to the primary,
// which had answered, went unanswered has lost the primary (R1), and
// lets its registration there run out while it finds no other server:
// no refresh is owed (I8).
func TestFlowLostLetsTheBindingGo(t *testing.T) {
	const s = time.Second
	ms := time.Millisecond
	conn := netip.AddrPortFrom(phone.Addr(), 40001)
	cr := newCrafter(t)
	cr.accepted(0, conn, primary)
	cr.tcpRegister(2*ms, conn, primary, 1, 60, 200)
	cr.tcp(20*s, conn, primary, "\r\n\r\n", false, false)
	cr.tcp(20*s+ms, primary, conn, "\r\n", false, false)
	cr.tcp(40*s, conn, primary, "\r\n\r\n", false, false) // no pong: the flow is lost at 50 s
	backupConn := netip.AddrPortFrom(phone.Addr(), 40002)
	cr.refused(50*s, ms, backupConn, backup)
	cr.tcp(90*s, conn, primary, "\r\n\r\n", false, false) // the capture runs past the binding's end

	if v := cr.verdicts()["I8"]; v.Status == Violated {
		t.Errorf("I8 violated: %v", v.Findings)
	}
}

// TestRoundBesideASlowProbe: a round's connection that goes out while a
// keep-alive's connection to another server is still being refused is the
// round's step, not part of the keep-alives' burst: here the round goes
// from the primary's 503 to the backup, as it must (I2).
func TestRoundBesideASlowProbe(t *testing.T) {
	third := netip.MustParseAddrPort("127.0.0.4:5060")
	ms := time.Millisecond
	cr := newCrafter(t)
	// The primary's connection is open; every server failed a round.
	cr.accepted(0, phonePort(40001), primary)
	cr.tcpRegister(2*ms, phonePort(40001), primary, 1, 3600, 503)
	cr.refused(4*ms, ms, phonePort(40002), backup)
	cr.refused(6*ms, ms, phonePort(40003), third)
	// The keep-alives; the third refuses slowly.
	at := 30 * time.Second
	cr.tcp(at, phonePort(40001), primary, "\r\n\r\n", false, false)
	cr.refused(at, ms, phonePort(40004), backup)
	cr.refused(at, 150*ms, phonePort(40005), third)
	// The back-off ends meanwhile: the primary 503s, the round goes on to
	// the backup, then the third.
	cr.tcpRegister(at+100*ms, phonePort(40001), primary, 2, 3600, 503)
	cr.refused(at+101*ms, ms, phonePort(40006), backup)
	cr.refused(at+102*ms, ms, phonePort(40007), third)
	cr.tcp(at+time.Minute, phonePort(40001), primary, "\r\n\r\n", false, false)

	s := settings()
	s.Servers = append(s.Servers, third)
	cr.holds(s)
}
