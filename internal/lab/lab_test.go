package lab

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/internal/capture"
	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
)

// The phone under test in these tests: the project's own agent, its
// timers short but with margins a loaded machine keeps (T1 200 ms: a
// budget of 600 ms; a keep-alive each second).
const (
	t1        = 200 * time.Millisecond
	keepalive = time.Second
	failback  = 3 // seconds
	backoff   = 2 * time.Second
)

// phoneSettings are the bounds the lab judges the agent by: its own.
func phoneSettings() capture.Settings {
	s := capture.DefaultSettings()
	s.T1, s.T2, s.RetryCounts = t1, 8*t1, 2
	s.Keepalive, s.FailbackInterval = keepalive, failback*time.Second
	s.BackoffBase, s.BackoffMax = backoff, backoff
	s.FailbackWhenIdle = true
	return s
}

// startLab brings up a lab on free loopback ports, or skips where no
// packet socket may be opened.
func startLab(t *testing.T, transport string) *Lab {
	t.Helper()
	l, err := Start(Config{Primary: netip.MustParseAddrPort("127.0.0.1:0"), Backup: netip.MustParseAddrPort("127.0.0.1:0"),
		Transport: transport, User: "1001", Password: "secret", Expires: 10, RetryAfter: 2, Slow: 50, Phone: phoneSettings(), Progress: testWriter{t}})
	if err != nil {
		if strings.Contains(err.Error(), "packet socket") {
			t.Skipf("the lab cannot capture here: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

// pointPhone starts the agent with one line on the lab's servers;
// failbackOn is the line's Enable Failback.
func pointPhone(t *testing.T, l *Lab, tr int, failbackOn bool) {
	pointPhoneT1(t, l, tr, failbackOn, t1)
}

// pointPhoneT1 is pointPhone with the line's T1 (the lab judges it by t1).
func pointPhoneT1(t *testing.T, l *Lab, tr int, failbackOn bool, phoneT1 time.Duration) {
	t.Helper()
	p, b := l.Servers()
	port := func(ap netip.AddrPort) *int { n := int(ap.Port()); return &n }
	retries, interval := 2, failback
	enable := map[bool]int{true: 1, false: 0}[failbackOn]
	cfg := settings.LineConfig{Name: "phone", User: "1001", Password: "secret", Domain: "lab.test",
		Servers:           []settings.ServerConfig{{Addr: "127.0.0.1", Port: port(p), Transport: &tr}, {Addr: "127.0.0.1", Port: port(b), Transport: &tr}},
		SignalRetryCounts: &retries, FailbackInterval: &interval, EnableFailback: &enable,
		T1: settings.Duration(phoneT1), T2: settings.Duration(8 * phoneT1), KeepaliveInterval: settings.Duration(keepalive),
		BackoffBase: settings.Duration(backoff), BackoffMax: settings.Duration(backoff)}
	net := transport.NewSocketNetwork(nil, nil)
	t.Cleanup(func() { net.Close() })
	agent := runtime.NewAgent(net)
	line, err := agent.AddLine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	line.Register()
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// pick returns the plan's cases of these names.
func pick(t *testing.T, transport string, names ...string) []Case {
	plan, err := DefaultPlan(transport)
	if err != nil {
		t.Fatal(err)
	}
	var out []Case
	for _, c := range plan {
		if slices.Contains(names, c.Name) {
			out = append(out, c)
		}
	}
	if len(out) != len(names) {
		t.Fatalf("the plan has %d of the cases %v", len(out), names)
	}
	return out
}

// passes runs the agent through the named cases of a lab over transport,
// and fails t unless every case and invariant held.
func passes(t *testing.T, transport string, cases ...string) *Report {
	t.Helper()
	l := startLab(t, transport)
	pointPhone(t, l, map[string]int{"udp": settings.TransportUDP, "tcp": settings.TransportTCP}[transport], true)
	rep, err := l.Run(context.Background(), pick(t, transport, cases...))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	rep.Write(&out)
	t.Log("\n" + out.String())
	if rep.Unusable != "" || rep.Violated() {
		t.Fatalf("the agent did not pass the lab over %s: %s", transport, rep.Unusable)
	}
	return rep
}

// TestAgentPassesTheLab: the project's own agent, pointed at the lab over
// UDP, fails over and back within its bounds for a 503, a killed port and
// both servers down; the cases that need the user are not run, never
// passed.
func TestAgentPassesTheLab(t *testing.T) {
	t.Parallel()
	rep := passes(t, "udp", "503/timers", "kill/timers", "slow/timers", "kill/farcall", "503/call", "both-down")
	for _, r := range rep.Results {
		switch {
		case r.Case.Trigger == Dial && r.Verdict != NotRun:
			t.Errorf("%s ran with no -dial: %s", r.Case.Name, r.Verdict)
		case r.Case.Stays && r.Verdict != Held:
			t.Errorf("%s: %s (%s)", r.Case.Name, r.Verdict, r.Why)
		case r.Case.Stays:
		case r.Case.Trigger != Dial && (r.Verdict != Held || r.Failback == 0 || r.Failback > r.FailbackBound):
			t.Errorf("%s: %s, failback %v (bound %v)", r.Case.Name, r.Verdict, r.Failback, r.FailbackBound)
		case r.Case.Trigger == Timers && !r.Case.Both && (r.Failover == 0 || r.Failover > r.FailoverBound):
			t.Errorf("%s: failover %v (bound %v)", r.Case.Name, r.Failover, r.FailoverBound)
		}
	}
}

// TestLabFailsAPhoneThatNeverFailsBack: the agent with failback off, judged
// as a phone whose settings say it is on, stays on the backup: the case
// is violated, and says so.
func TestLabFailsAPhoneThatNeverFailsBack(t *testing.T) {
	t.Parallel()
	l := startLab(t, "udp")
	pointPhone(t, l, settings.TransportUDP, false)
	rep, err := l.Run(context.Background(), pick(t, "udp", "503/timers"))
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Results[0]
	if r.Verdict != Violated || !strings.Contains(r.Why, "failback") || !rep.Violated() {
		t.Errorf("a phone that never fails back: %s (%s)", r.Verdict, r.Why)
	}
}

// TestLabFailsAPhoneThatLeavesTooSoon: a phone whose budget is a quarter of what
// its settings say gives up on a primary that answers late but within the
// budget, and registers on the backup: the slow case is violated.
func TestLabFailsAPhoneThatLeavesTooSoon(t *testing.T) {
	t.Parallel()
	l := startLab(t, "udp")
	pointPhoneT1(t, l, settings.TransportUDP, true, t1/4)
	rep, err := l.Run(context.Background(), pick(t, "udp", "slow/timers"))
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.Results[0]; r.Verdict != Violated || !strings.Contains(r.Why, "registered on the backup") {
		t.Errorf("a phone that leaves too soon: %s (%s)", r.Verdict, r.Why)
	}
}

// TestLabSaysWhenNoPhoneComes: with no phone pointed at it, the run stops
// within the first case's bound and says why.
func TestLabSaysWhenNoPhoneComes(t *testing.T) {
	t.Parallel()
	l := startLab(t, "udp")
	start := time.Now()
	rep, err := l.Run(context.Background(), pick(t, "udp", "503/timers", "kill/timers"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep.Unusable, "not registered on the primary") || len(rep.Results) != 0 {
		t.Errorf("no phone: unusable %q, %d results", rep.Unusable, len(rep.Results))
	}
	if bound := l.detect() + l.registerBound(0); time.Since(start) > 3*bound {
		t.Errorf("it took %v to say so; the bound is %v", time.Since(start), bound)
	}
}

// TestPlanCoversTheModel: every event by which the line model loses its
// primary is played by a case of the plan, over each transport.
func TestPlanCoversTheModel(t *testing.T) {
	for _, tr := range []string{"udp", "tcp"} {
		plan, err := DefaultPlan(tr)
		if err != nil {
			t.Fatal(err)
		}
		played := map[string]bool{}
		for _, c := range plan {
			for _, e := range c.Events {
				played[e] = true
			}
		}
		for _, want := range []string{"resp.unavailable", "timer.budget", "server.held_off", "keepalive.failed", "flow.lost", "request.unavailable",
			map[string]string{"udp": "transport.icmp", "tcp": "transport.tcp"}[tr]} {
			if !played[want] {
				t.Errorf("%s: no case plays %s", tr, want)
			}
		}
	}
}

// TestAgentPassesTheLabOverTCP: over TCP a killed port resets, a dropped
// one never answers a connection, a frozen one accepts and says nothing;
// the agent fails over and back in each.
func TestAgentPassesTheLabOverTCP(t *testing.T) {
	t.Parallel()
	rep := passes(t, "tcp", "kill/timers", "drop/timers", "freeze/timers", "kill/farcall")
	for _, r := range rep.Results {
		if r.Verdict != Held || r.Failover == 0 || r.Failback == 0 {
			t.Errorf("%s: %s, failover %v, failback %v", r.Case.Name, r.Verdict, r.Failover, r.Failback)
		}
	}
}
