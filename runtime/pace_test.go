package runtime_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/runtimetest"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
)

// fleetOf builds n lines of one agent on a simulated primary and backup
// (UDP, no challenge, TTL 100 s), in virtual time.
func fleetOf(t *testing.T, n int, lc settings.LineConfig, opts ...runtime.Option) (*runtimetest.VirtualClock, *runtimetest.SimNetwork, []transport.Endpoint, []*runtime.Line) {
	t.Helper()
	clock := runtimetest.NewVirtualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	simnet := runtimetest.NewSimNetwork(clock, 5*time.Millisecond)
	port, ttl := 5060, 100
	var eps []transport.Endpoint
	for i := range 2 {
		e := transport.Endpoint{Host: fmt.Sprintf("127.0.1.%d", i+1), Port: port}
		eps = append(eps, e)
		simnet.Add(&runtimetest.SimServer{Endpoint: e})
		lc.Servers = append(lc.Servers, settings.ServerConfig{Addr: e.Host, Port: &port, TTL: &ttl})
	}
	agent := runtime.NewAgent(simnet, append([]runtime.Option{runtime.WithClock(clock), runtime.WithSeed(7)}, opts...)...)
	var lines []*runtime.Line
	for i := range n {
		c := lc
		c.Servers = slices.Clone(lc.Servers)
		c.Name, c.User = fmt.Sprintf("fleet-%d", i+1), fmt.Sprintf("2%04d", i+1)
		l, err := agent.AddLine(c)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	return clock, simnet, eps, lines
}

// firstSends returns when each new transaction to e was first sent, since
// the network was made.
func firstSends(simnet *runtimetest.SimNetwork, e transport.Endpoint) []time.Duration {
	seen := map[string]bool{}
	var out []time.Duration
	for _, r := range simnet.Requests(e) {
		if !seen[r.Branch] {
			seen[r.Branch] = true
			out = append(out, r.At)
		}
	}
	return out
}

// TestPacingTakesTurns: 100 lines registering at once with pacing 10 a
// second, burst 5, send five REGISTERs at once and then one every 100 ms;
// a REGISTER's budget (T1 20 ms, one transmission: 20 ms) counts from its
// turn, so no line takes the wait for the primary's silence.
func TestPacingTakesTurns(t *testing.T) {
	one := 1
	clock, simnet, eps, lines := fleetOf(t, 100, settings.LineConfig{T1: settings.Duration(20 * time.Millisecond), SignalRetryCounts: &one},
		runtime.WithPacing(settings.Pacing{Rate: 10, Burst: 5}))
	for _, l := range lines {
		l.Register()
	}
	clock.Advance(15 * time.Second)
	sends := firstSends(simnet, eps[0])
	if len(sends) != 100 {
		t.Fatalf("the primary got %d REGISTERs, want 100", len(sends))
	}
	for k, at := range sends {
		want := time.Duration(0)
		if k >= 5 {
			want = time.Duration(k-4) * 100 * time.Millisecond
		}
		if at < want || at > want+time.Microsecond {
			t.Fatalf("REGISTER %d sent at %v, want its turn at %v", k+1, at, want)
		}
	}
	for _, l := range lines {
		if st := l.Status(); !st.Registered || st.Server != 1 {
			t.Fatalf("%s is %s on server %d, want registered on the primary", l.Name(), l.State(), st.Server)
		}
	}
	if n := len(simnet.Requests(eps[1])); n != 0 {
		t.Errorf("the backup got %d requests: a line failed over while waiting for its turn", n)
	}
}

// TestPacingOff: a rate of 0 sends every REGISTER at once.
func TestPacingOff(t *testing.T) {
	clock, simnet, eps, lines := fleetOf(t, 300, settings.LineConfig{}, runtime.WithPacing(settings.Pacing{}))
	for _, l := range lines {
		l.Register()
	}
	clock.Advance(time.Second)
	sends := firstSends(simnet, eps[0])
	if len(sends) != 300 || sends[len(sends)-1] != 0 {
		t.Fatalf("%d REGISTERs, the last at %v; want 300 at once", len(sends), sends[len(sends)-1])
	}
}

// TestTimerSpread: with timer_spread 20 the first refreshes of lines
// registered together come between 80 % and 100 % of their interval,
// spread over it; with 0 all at the same moment (R21).
func TestTimerSpread(t *testing.T) {
	for _, spread := range []int{0, 20} {
		clock, simnet, eps, lines := fleetOf(t, 200, settings.LineConfig{TimerSpread: spread}, runtime.WithPacing(settings.Pacing{}))
		for _, l := range lines {
			l.Register()
		}
		clock.Advance(90 * time.Second)
		sends := firstSends(simnet, eps[0])
		if len(sends) != 400 {
			t.Fatalf("spread %d: %d REGISTERs, want 200 and their first refreshes", spread, len(sends))
		}
		from, to := sends[200], sends[399]
		refresh := 80 * time.Second // of a TTL of 100 s
		switch spread {
		case 0:
			if from < refresh || to-from > 10*time.Millisecond {
				t.Errorf("spread 0: refreshes from %v to %v, want them together at %v", from, to, refresh)
			}
		default:
			if from < refresh*80/100 || to > refresh+time.Second || to-from < refresh/10 {
				t.Errorf("spread %d: refreshes from %v to %v, want them over most of [%v, %v]", spread, from, to, refresh*80/100, refresh)
			}
		}
	}
}
