package capture

import (
	"net/netip"
	"testing"
	"time"
)

// I2's and I5's readings that a correct phone's failover and failback drew
// from the wire oracle and the lab: each a crafted capture that fails
// without its fix.

// TestRequestFailsWhileRefused: a request that finds the server unavailable
// just after the server refused the line's credentials (a refresh
// challenged twice, with nothing sent after) moves the line nowhere: the
// line was refused, and waits for its back-off before a new round (I9), not
// a failover (I2). Drawn by the wire oracle over TCP, with a BYE.
func TestRequestFailsWhileRefused(t *testing.T) {
	const s = time.Second
	ms := time.Millisecond
	cr := newCrafter(t)
	cseq := cr.register(0, primary, "reg", 1, 60, false)
	cr.silent(10*s, primary, cr.request("MESSAGE", "msg", 1, -1), 3, false) // fails at 13.5 s
	refresh := cr.request("REGISTER", "reg", cseq, 60)
	cr.udp(12500*ms, phone, primary, refresh.String())
	cr.udp(12510*ms, primary, phone, answer(refresh, 401, "WWW-Authenticate: Digest realm=\"example.test\", nonce=\"n2\"\r\n"))
	again := cr.request("REGISTER", "reg", cseq+1, 60)
	cr.udp(12520*ms, phone, primary, again.String())
	cr.udp(12530*ms, primary, phone, answer(again, 401, "WWW-Authenticate: Digest realm=\"example.test\", nonce=\"n3\"\r\n"))
	cr.register(30*s, primary, "reg", cseq+2, 60, false) // the round after the back-off
	if v := cr.verdicts()["I2"]; v.Status == Violated {
		t.Errorf("I2 violated: %v", v.Findings)
	}
}

// TestByeFailsAsTheProbeIsTaken: with failback_when idle, a probe the
// primary accepted during a call leaves the phone on its backup until the
// call ends. The call's BYE finds the backup unavailable and goes through
// the primary, which answers: the call has ended, and the phone takes the
// probe's binding (the model's adopt_probe). It is registered on the
// primary with no REGISTER more: that is its failover (I2). Drawn by the
// wire oracle.
func TestByeFailsAsTheProbeIsTaken(t *testing.T) {
	const s = time.Second
	ms := time.Millisecond
	cr := newCrafter(t)
	cr.register(0, backup, "reg", 1, 120, false)
	inv := cr.request("INVITE", "call", 1, -1)
	cr.udp(10*s, phone, backup, inv.String())
	cr.udp(10*s+500*ms, backup, phone, answer(inv, 200, ""))
	ack := cr.request("ACK", "call", 1, -1)
	ack.toTag = true
	cr.udp(10*s+510*ms, phone, backup, ack.String())
	cr.register(20*s, primary, "probe", 1, 120, false) // the probe's 2xx, during the call
	bye := cr.request("BYE", "call", 2, -1)
	bye.toTag = true
	cr.silent(30*s, backup, bye, 3, false) // unavailable at 33.5 s
	again := cr.request("BYE", "call", 3, -1)
	again.toTag = true
	cr.udp(33500*ms, phone, primary, again.String())
	cr.udp(33510*ms, primary, phone, answer(again, 200, ""))
	m := cr.request("MESSAGE", "msg", 1, -1)
	cr.udp(90*s, phone, primary, m.String()) // the capture goes on
	cr.udp(90*s+10*ms, primary, phone, answer(m, 200, ""))
	st := settings()
	st.Servers = append(st.Servers, netip.MustParseAddrPort("127.0.0.4:5060")) // the backup is not the last
	st.FailbackWhenIdle = true
	if v := cr.verdictsWith(st)["I2"]; v.Status == Violated {
		t.Errorf("I2 violated: %v", v.Findings)
	}
}

// TestNewRoundPassesTheFailedBackup: a request fails on the backup, and the
// phone starts a new round from the primary (R13): over TCP the primary
// refuses the connection, and the round goes on to the backup again at
// once. At the same instant the request itself went to a third server
// that shares the registrations (R23), refused too: two connections
// together, which is no keep-alive burst to hide the round's first step.
// The REGISTER to the backup is the round's second step, not the phone
// staying where it failed (I2). Drawn by the wire oracle.
func TestNewRoundPassesTheFailedBackup(t *testing.T) {
	third := netip.MustParseAddrPort("127.0.0.4:5060")
	const s = time.Second
	ms := time.Millisecond
	cr := newCrafter(t)
	cr.accepted(0, phonePort(40001), backup)
	cr.tcpRegister(2*ms, phonePort(40001), backup, 1, 3600, 200)
	m := cr.request("MESSAGE", "msg", 1, -1)
	m.transport = "TCP"
	cr.tcp(10*s, phonePort(40001), backup, m.String(), false, false) // unanswered: fails at 13.5 s
	cr.refused(13500*ms, 89*ms, phonePort(40002), third)             // the MESSAGE to the third
	cr.refused(13500*ms, 14*ms, phonePort(40003), primary)           // the round's first step
	cr.tcpRegister(13514*ms, phonePort(40001), backup, 2, 3600, 200) // its second, at once
	st := settings()
	st.Servers = []netip.AddrPort{primary, backup, third}
	st.Shared = []bool{false, false, true}
	if v := cr.verdictsWith(st)["I2"]; v.Status == Violated {
		t.Errorf("I2 violated: %v", v.Findings)
	}
}

// TestConnectionNeverAnswered: over TCP a server that never answers the
// phone's SYN (it drops it, or refuses it only after the phone's budget)
// is a try of that server all the same: the round goes on to the next
// server when the budget ends, as it must (I2, I3). Drawn by the wire
// oracle, with a refusal that came after the budget.
func TestConnectionNeverAnswered(t *testing.T) {
	third := netip.MustParseAddrPort("127.0.0.4:5060")
	const s = time.Second
	ms := time.Millisecond
	cr := newCrafter(t)
	cr.accepted(0, phonePort(40001), primary)
	cr.tcpRegister(2*ms, phonePort(40001), primary, 1, 3600, 200)
	cr.tcpRegister(60*s, phonePort(40001), primary, 2, 3600, 0) // unanswered: the budget ends at 63.5 s
	cr.tcp(63500*ms, phonePort(40002), backup, "", true, false) // never answered
	cr.accepted(67*s, phonePort(40003), third)                  // the budget of the backup has ended
	cr.tcpRegister(67*s+2*ms, phonePort(40003), third, 3, 3600, 200)
	cr.tcpRegister(90*s, phonePort(40003), third, 4, 3600, 200)
	st := settings()
	st.Servers = []netip.AddrPort{primary, backup, third}
	v := cr.verdictsWith(st)
	for _, id := range []string{"I2", "I3"} {
		if v[id].Status == Violated {
			t.Errorf("%s violated: %v", id, v[id].Findings)
		}
	}
}

// TestInviteAsTheProbeIsTaken: the probe's 2xx reaches the phone as the
// user dials, and the INVITE goes to the backup, where the line is still
// registered, before the phone has taken the probe's binding (R10): no
// phone acts on an answer the instant it arrives. A new request is held to
// the newer binding only once the phone has had the slack to take it (I5).
// Drawn by the lab over TCP under load: the probe's 2xx, the primary
// frozen, and the user's call 19 ms after the freeze.
func TestInviteAsTheProbeIsTaken(t *testing.T) {
	const s = time.Second
	ms := time.Millisecond
	for _, c := range []struct {
		after time.Duration // from the probe's 2xx to the INVITE
		want  string
	}{{10 * ms, Held}, {5 * s, Violated}} {
		cr := newCrafter(t)
		cseq := cr.register(0, primary, "reg", 1, 120, false)
		cr.silent(20*s, primary, cr.request("REGISTER", "reg", cseq, 120), 3, false)
		cr.register(23500*ms, backup, "reg", cseq+1, 120, false)
		cr.register(83500*ms, primary, "probe", 1, 120, false) // its 2xx at 83.51 s
		cr.call(83510*ms+c.after, 100*s, backup, "call")
		if v := cr.verdicts()["I5"]; v.Status != c.want {
			t.Errorf("an INVITE to the backup %v after the probe's 2xx: I5 %s, want %s: %v", c.after, v.Status, c.want, v.Findings)
		}
	}
}
