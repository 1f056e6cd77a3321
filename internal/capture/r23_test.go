package capture

import (
	"fmt"
	"testing"
	"time"
)

// TestSharedServerTakesRequests: R23. A phone registered on its primary
// dials; the primary leaves the INVITE unanswered and the INVITE goes on to
// the backup: I5, unless the backup has register_on_enable 0 and shares the
// registration the phone holds on the primary. Sharing needs a binding
// somewhere, and lets a request go on there, not start there.
func TestSharedServerTakesRequests(t *testing.T) {
	const s = time.Second
	for _, c := range []struct {
		name        string
		registered  bool
		fromPrimary bool
		shared      []bool
		want        string
	}{
		{"not shared", true, true, nil, Violated},
		{"shared", true, true, []bool{false, true}, Held},
		{"shared, nothing registered", false, true, []bool{false, true}, Violated},
		{"the primary shared, not the backup", true, true, []bool{true, false}, Violated},
		{"shared, a new INVITE there", true, false, []bool{false, true}, Violated},
	} {
		cr := newCrafter(t)
		if c.registered {
			cr.register(0, primary, "reg", 1, 60, false)
		}
		if c.fromPrimary {
			cr.silent(100*time.Millisecond, primary, cr.request("INVITE", "call", 1, -1), 3, false)
		}
		cr.call(4*s, 6*s, backup, "call")
		st := settings()
		st.Shared = c.shared
		if v := cr.verdictsWith(st)["I5"]; v.Status != c.want {
			t.Errorf("%s: I5 %s (%s %v), want %s", c.name, v.Status, v.Why, v.Findings, c.want)
		}
	}
}

// TestSharedServerWhileHeldOff: R23 and R1. The primary answers a MESSAGE
// 503 with Retry-After 30; a new INVITE 4 s later passes the primary over
// without sending (its Retry-After runs) and starts on the backup, which
// shares the registrations: no I5. Without the Retry-After it should have
// gone to the primary.
func TestSharedServerWhileHeldOff(t *testing.T) {
	const s = time.Second
	for _, ra := range []int{30, 0} {
		cr := newCrafter(t)
		cr.register(0, primary, "reg", 1, 60, false)
		m := cr.request("MESSAGE", "msg", 1, -1)
		cr.udp(s, phone, primary, m.String())
		extra := ""
		if ra > 0 {
			extra = fmt.Sprintf("Retry-After: %d\r\n", ra)
		}
		cr.udp(s+10*time.Millisecond, primary, phone, answer(m, 503, extra))
		cr.call(4*s, 6*s, backup, "call")
		st := settings()
		st.Shared = []bool{false, true}
		want := map[bool]string{true: Held, false: Violated}[ra > 0]
		if v := cr.verdictsWith(st)["I5"]; v.Status != want {
			t.Errorf("Retry-After %d: I5 %s (%s %v), want %s", ra, v.Status, v.Why, v.Findings, want)
		}
	}
}

// TestRequestWhileRegistering: R23. A phone dials through its primary
// while its first REGISTER there waits for the answer: I5, unless
// only_signal_with_registered is 0; once the REGISTER has its answer (a
// refusal) it is I5 either way.
func TestRequestWhileRegistering(t *testing.T) {
	for _, c := range []struct {
		name        string
		unreg       bool
		answerFirst bool
		want        string
	}{
		{"only with registered", false, false, Violated},
		{"also while registering", true, false, Held},
		{"after the REGISTER was refused", true, true, Violated},
	} {
		cr := newCrafter(t)
		r := cr.request("REGISTER", "reg", 1, 60)
		cr.udp(0, phone, primary, r.String())
		at := 5 * time.Millisecond
		if c.answerFirst {
			cr.udp(at, primary, phone, answer(r, 403, ""))
			at += 5 * time.Millisecond
		}
		inv := cr.request("INVITE", "call", 1, -1)
		cr.udp(at, phone, primary, inv.String())
		cr.udp(at+10*time.Millisecond, primary, phone, answer(inv, 486, ""))
		if !c.answerFirst {
			cr.udp(100*time.Millisecond, primary, phone, answer(r, 200, ""))
		}
		st := settings()
		st.SignalUnregistered = c.unreg
		if v := cr.verdictsWith(st)["I5"]; v.Status != c.want {
			t.Errorf("%s: I5 %s (%s %v), want %s", c.name, v.Status, v.Why, v.Findings, c.want)
		}
	}
}

// TestFailoverOfARequestAfterFailback: R23 and I1. The phone has failed
// back to its primary on a probe's 2xx; a new INVITE goes to the primary,
// which does not answer it, and the INVITE goes on to the backup, which
// shares the registrations: no I1, the new INVITE went to the primary.
// An INVITE that goes to the backup first is I1.
func TestFailoverOfARequestAfterFailback(t *testing.T) {
	const s = time.Second
	for _, goesOn := range []bool{true, false} {
		c := newCrafter(t)
		failedBack(c)
		if goesOn {
			c.silent(20*s, primary, c.request("INVITE", "call", 1, -1), 3, false)
		}
		c.call(24*s, 30*s, backup, "call")
		st := settings()
		st.Shared = []bool{false, true}
		want := map[bool]string{true: Held, false: Violated}[goesOn]
		if v := c.verdictsWith(st)["I1"]; v.Status != want {
			t.Errorf("goes on %v: I1 %s (%s %v), want %s", goesOn, v.Status, v.Why, v.Findings, want)
		}
	}
}

// TestCallWhileRegisteringAfterFailback: R23 and I1. Failed back to the
// primary, the phone finds the primary silent at a refresh and registers on
// the backup; a new INVITE goes to the backup while that REGISTER waits for
// its answer. With only_signal_with_registered 0 the phone has left the
// primary: I1 holds. With 1 the INVITE went where the phone was not
// registered, and I1 says so.
func TestCallWhileRegisteringAfterFailback(t *testing.T) {
	const s = time.Second
	for _, unreg := range []bool{true, false} {
		c := newCrafter(t)
		failedBack(c)
		c.silent(20*s, primary, c.request("REGISTER", "probe", 2, 60), 3, false)
		r := c.request("REGISTER", "probe", 3, 60)
		c.udp(23600*time.Millisecond, phone, backup, r.String())
		c.call(23650*time.Millisecond, 30*s, backup, "call")
		c.udp(24*s, backup, phone, answer(r, 200, "Contact: <sip:1001@127.0.0.1:5062>;expires=60\r\n"))
		st := settings()
		st.SignalUnregistered = unreg
		want := map[bool]string{true: Held, false: Violated}[unreg]
		if v := c.verdictsWith(st)["I1"]; v.Status != want {
			t.Errorf("only_signal_with_registered 0 %v: I1 %s (%s %v), want %s", unreg, v.Status, v.Why, v.Findings, want)
		}
	}
}

// failedBack crafts a phone that finds its primary silent, registers on
// its backup at 4 s and fails back on a probe's 2xx at 10 s.
func failedBack(c *crafter) {
	const s = time.Second
	c.silent(0, primary, c.request("REGISTER", "reg", 1, 60), 3, false)
	c.register(4*s, backup, "reg", 2, 60, false)
	c.register(10*s, primary, "probe", 1, 60, false)
}

// TestRequestWhileConnecting: R23 over TCP. The phone's REGISTER waits for
// its connection to the primary (a SYN not yet answered) when an INVITE
// goes there on a connection of its own: with only_signal_with_registered
// 0 the phone is registering there, as far as the wire can show; with 1
// it is registered nowhere.
func TestRequestWhileConnecting(t *testing.T) {
	ms := time.Millisecond
	for _, unreg := range []bool{true, false} {
		cr := newCrafter(t)
		cr.tcp(0, phonePort(40001), primary, "", true, false) // the REGISTER's connection, still opening
		cr.accepted(3*ms, phonePort(40002), primary)
		inv := cr.request("INVITE", "call", 1, -1)
		inv.transport = "TCP"
		cr.tcp(5*ms, phonePort(40002), primary, inv.String(), false, false)
		cr.tcp(6*ms, primary, phonePort(40002), answer(inv, 486, ""), false, false)
		st := settings()
		st.SignalUnregistered = unreg
		want := map[bool]string{true: Held, false: Violated}[unreg]
		if v := cr.verdictsWith(st)["I5"]; v.Status != want {
			t.Errorf("only_signal_with_registered 0 %v: I5 %s (%s %v), want %s", unreg, v.Status, v.Why, v.Findings, want)
		}
	}
}
