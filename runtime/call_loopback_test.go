package runtime_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/fsm"
	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/runtimetest"
	"github.com/sipfailover/sipfailover/runtime/settings"
)

// callBench is a bench with a far end: a phone registered as 1002 through
// the primary, reachable through both servers (they share registrations).
type callBench struct {
	*bench
	phone *runtimetest.Phone
}

func newCallBench(t testing.TB, tweak func(*settings.LineConfig)) *callBench {
	t.Helper()
	b := &callBench{bench: newBench(t, "udp", tweak), phone: &runtimetest.Phone{User: "1002", Password: "far"}}
	if err := b.phone.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.phone.Stop)
	if err := b.phone.Register(b.primary.Addr); err != nil {
		t.Fatal(err)
	}
	b.line.Register()
	b.waitState("primary_registered", 2*time.Second)
	return b
}

// waitCall waits until the call is in state and returns how long it took.
func waitCall(t testing.TB, c *runtime.Call, state fsm.CallState, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for c.State() != state {
		if time.Since(start) > within {
			t.Fatalf("call not %s within %v: %+v", state, within, c.Info())
		}
		time.Sleep(100 * time.Microsecond) // polls real sockets; the logic never sleeps
	}
	return time.Since(start)
}

// waitPhone waits until the far end's call is in state (its ACK or BYE
// may still be on the way when the line's call changes).
func waitPhone(t testing.TB, p *runtimetest.Phone, callID, state string) {
	t.Helper()
	start := time.Now()
	for p.Call(callID) != state {
		if time.Since(start) > 2*time.Second {
			t.Fatalf("the far end's call is %q, want %s", p.Call(callID), state)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// methods lists what a registrar saw of one call, in order, with the
// answers it sent.
func methods(r *runtimetest.Registrar, callID string) []string {
	var out []string
	for _, s := range r.Seen() {
		if s.CallID == callID {
			out = append(out, s.Method+"/"+strconv.Itoa(s.Answer))
		}
	}
	return out
}

// registeredBefore checks I5 on a registrar: every INVITE it got came after
// it had answered the line's REGISTER with 200.
func registeredBefore(t *testing.T, r *runtimetest.Registrar) {
	t.Helper()
	var registered time.Time
	for _, s := range r.Seen() {
		switch {
		case s.Method == "REGISTER" && s.Answer == 200 && s.Expires != 0 && registered.IsZero():
			registered = s.At
		case s.Method == "INVITE" && (registered.IsZero() || s.At.Before(registered)):
			t.Errorf("I5: %s got an INVITE at %v before the line registered there (%v)", r.Name, s.At, registered)
		}
	}
}

// TestCallThroughPrimary: a call set up through the primary, which
// challenges the INVITE (407), reaches the far end, and the hang-up's BYE
// follows the route set through the primary.
func TestCallThroughPrimary(t *testing.T) {
	b := newCallBench(t, nil)
	c, err := b.line.Dial("sip:1002@example.test")
	if err != nil {
		t.Fatal(err)
	}
	waitCall(t, c, fsm.CallStateConfirmed, 2*time.Second)
	if got := c.Info(); got.Server != 1 || got.Code != 200 {
		t.Fatalf("call %+v, want answered 200 through the primary", got)
	}
	c.Hangup()
	waitCall(t, c, fsm.CallStateEnded, 2*time.Second)
	if st := b.phone.Call(c.ID()); st != "ended" {
		t.Fatalf("the far end's call is %q, want ended", st)
	}
	// The ACK of the 407 ends the INVITE's server transaction and does not
	// reach the proxy's logic; the ACK of the 200 is proxied. The server
	// handles each request in its own goroutine, so the ACK and the BYE
	// that follows at once may be noted in either order, and the ACK's
	// after the call has ended here (a loaded machine, the race detector).
	got := methods(b.primary, c.ID())
	for deadline := time.Now().Add(2 * time.Second); len(got) < 4 && time.Now().Before(deadline); got = methods(b.primary, c.ID()) {
		time.Sleep(10 * time.Millisecond) // the server's goroutines on real sockets, not line logic
	}
	if len(got) == 4 && got[2] == "BYE/200" {
		got[2], got[3] = got[3], got[2]
	}
	if want := []string{"INVITE/407", "INVITE/200", "ACK/0", "BYE/200"}; !slices.Equal(got, want) {
		t.Fatalf("the primary saw %v, want %v", got, want)
	}
	for _, s := range b.primary.Seen() {
		if s.CallID == c.ID() && s.Method == "BYE" && len(s.Route) != 1 {
			t.Fatalf("the BYE through the primary had Route %v, want the primary's record-route", s.Route)
		}
	}
}

// failureModes are the ways a primary becomes unavailable, on real
// sockets: killed (its port closes: ICMP port unreachable), silent, and
// answering 503.
var failureModes = []struct {
	name  string
	fail  func(*runtimetest.Registrar)
	bound func(cfg settings.LineConfig) time.Duration // the protocol's bound on the detection
}{
	{"killed", (*runtimetest.Registrar).Stop, func(settings.LineConfig) time.Duration { return 0 }},
	{"silent", func(r *runtimetest.Registrar) { r.SetMode(runtimetest.Silent) }, timerETotal},
	{"503", func(r *runtimetest.Registrar) { r.SetAnswer(503, 0) }, func(settings.LineConfig) time.Duration { return 0 }},
}

// timerETotal is the budget of Signal Retry Counts transmissions on Timer
// E (R3): the sum of the waits after each, T1 doubling up to T2.
func timerETotal(cfg settings.LineConfig) time.Duration {
	var total time.Duration
	wait := time.Duration(cfg.T1)
	for range *cfg.SignalRetryCounts {
		total += wait
		wait = min(2*wait, time.Duration(cfg.T2))
	}
	return total
}

// TestByeFailsOver: R7 on real sockets. A call set up through the primary;
// the primary fails; the user hangs up. The BYE goes to the backup after
// the line registered there, without the primary's Route, and the far end's
// call ends, in every failure mode.
func TestByeFailsOver(t *testing.T) {
	for _, m := range failureModes {
		t.Run(m.name, func(t *testing.T) {
			b := newCallBench(t, nil)
			c, err := b.line.Dial("sip:1002@example.test")
			if err != nil {
				t.Fatal(err)
			}
			waitCall(t, c, fsm.CallStateConfirmed, 2*time.Second)
			m.fail(b.primary)
			c.Hangup()
			took := waitCall(t, c, fsm.CallStateEnded, 5*time.Second)
			waitPhone(t, b.phone, c.ID(), "ended")
			t.Logf("hang-up took %v", took)
			var bye *runtimetest.Seen
			for _, s := range b.backup.Seen() {
				if s.CallID == c.ID() && s.Method == "BYE" {
					bye = &s
				}
			}
			if bye == nil || bye.Answer != 200 {
				t.Fatalf("the backup saw no BYE answered 200: %v", methods(b.backup, c.ID()))
			}
			// The primary's entry goes (R7); the backup goes first as a
			// pre-loaded route (RFC 3261 8.1.2).
			if want := fmt.Sprintf("<sip:%s;lr>", b.backup.Addr); len(bye.Route) != 1 || bye.Route[0] != want {
				t.Fatalf("the BYE through the backup had Route %v, want [%s]", bye.Route, want)
			}
			if b.line.Status().Server != 2 {
				t.Fatalf("the line is on server %d, want the backup", b.line.Status().Server)
			}
			// The call reports the server that answered its BYE.
			if i := c.Info(); i.Server != 2 || !strings.HasSuffix(i.ServerAddr, b.backup.Addr) {
				t.Errorf("the ended call reports server %d %s, want the backup that answered its BYE", i.Server, i.ServerAddr)
			}
			registeredBefore(t, b.backup)
		})
	}
}

// TestInviteFailsOver: R6, I5 on real sockets. The primary fails; the user
// dials. The INVITE goes to the backup only after the line's REGISTER there
// got 200, and the call reaches the far end, in every failure mode.
func TestInviteFailsOver(t *testing.T) {
	for _, m := range failureModes {
		t.Run(m.name, func(t *testing.T) {
			b := newCallBench(t, nil)
			m.fail(b.primary)
			c, err := b.line.Dial("sip:1002@example.test")
			if err != nil {
				t.Fatal(err)
			}
			waitCall(t, c, fsm.CallStateConfirmed, 5*time.Second)
			if got := c.Info(); got.Server != 2 {
				t.Fatalf("call %+v, want it through the backup", got)
			}
			waitPhone(t, b.phone, c.ID(), "up")
			registeredBefore(t, b.backup)
			c.Hangup()
			waitCall(t, c, fsm.CallStateEnded, 2*time.Second)
			waitPhone(t, b.phone, c.ID(), "ended")
		})
	}
}

// TestLineToLineCall: both ends are lines of one agent. The INVITE of 1002
// reaches 1001 through the primary, which answers it (incoming calls, R5),
// and the BYE of 1001 reaches 1002 through the backup after the primary
// died: the lines share one UDP port with a listener, so a request from a
// server other than the one a socket is connected to still arrives.
func TestLineToLineCall(t *testing.T) {
	b := newBench(t, "udp", nil)
	cfg := b.line.Config()
	cfg.Name, cfg.User, cfg.Password, cfg.AuthUser = "far", "1002", "far", ""
	far, err := b.agent.AddLine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b.line.Register()
	far.Register()
	b.waitState("primary_registered", 2*time.Second)
	for far.Status().State != "primary_registered" {
		time.Sleep(2 * time.Millisecond)
	}
	out, err := far.Dial("sip:1001@example.test")
	if err != nil {
		t.Fatal(err)
	}
	waitCall(t, out, fsm.CallStateConfirmed, 2*time.Second)
	calls := b.line.Calls()
	if len(calls) != 1 || calls[0].ID() != out.ID() {
		t.Fatalf("line 1001 has calls %v, want the one from 1002", calls)
	}
	in := calls[0]
	waitCall(t, in, fsm.CallStateConfirmed, 2*time.Second)
	if info := in.Info(); info.Outgoing || info.Server != 1 {
		t.Fatalf("incoming call %+v, want it through the primary", info)
	}
	b.primary.Stop()
	in.Hangup()
	waitCall(t, in, fsm.CallStateEnded, 5*time.Second)
	waitCall(t, out, fsm.CallStateEnded, 2*time.Second)
	if r := out.Info().Reason; !strings.Contains(r, "far end hung up") {
		t.Fatalf("the caller's call ended with %q, want the far end's BYE", r)
	}
	if got := methods(b.backup, out.ID()); !slices.Contains(got, "BYE/200") {
		t.Fatalf("the backup saw %v, want the BYE", got)
	}
}
