package proptest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/runtimetest"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
)

// TestFleetPacing runs a fleet, many lines of one agent, in virtual time
// against a primary and a backup, takes the primary down in a drawn way
// and brings it back, and checks I13 (R21): in any interval of length t
// each server is sent at most B + R·t new transactions, and no line is
// lost: every line ends registered on the primary.
func TestFleetPacing(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(20, 150).Draw(t, "lines")
		pacing := settings.Pacing{Rate: float64(rapid.IntRange(5, 100).Draw(t, "rate")), Burst: rapid.IntRange(1, 20).Draw(t, "burst")}
		spread := rapid.IntRange(0, 50).Draw(t, "timer_spread")
		tcp := rapid.Bool().Draw(t, "tcp")
		retries := rapid.IntRange(1, 3).Draw(t, "retry_counts")
		t1 := rapid.SampledFrom([]time.Duration{20 * time.Millisecond, 500 * time.Millisecond}).Draw(t, "t1")
		interval := rapid.IntRange(10, 120).Draw(t, "failback_interval")
		ttl := rapid.IntRange(30, 600).Draw(t, "ttl")
		keepalive := time.Duration(rapid.SampledFrom([]int{0, 15, 60}).Draw(t, "keepalive_s")) * time.Second
		down := rapid.SampledFrom([]runtimetest.SimMode{runtimetest.SimSilent, runtimetest.SimICMP, runtimetest.SimAnswer}).Draw(t, "down")
		downAt := time.Duration(rapid.IntRange(0, 2*ttl).Draw(t, "down_at_s")) * time.Second
		downFor := time.Duration(rapid.IntRange(1, 3*ttl).Draw(t, "down_for_s")) * time.Second
		if tcp && down == runtimetest.SimICMP {
			down = runtimetest.SimRefused
		}

		clock := runtimetest.NewVirtualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		start := clock.Now()
		simnet := runtimetest.NewSimNetwork(clock, 5*time.Millisecond)
		tr := settings.TransportUDP
		if tcp {
			tr = settings.TransportTCP
		}
		port := 5060
		var eps []transport.Endpoint
		var servers []settings.ServerConfig
		for i := range 2 {
			e := transport.Endpoint{Host: fmt.Sprintf("127.0.1.%d", i+1), Port: port, Transport: tr}
			eps = append(eps, e)
			simnet.Add(&runtimetest.SimServer{Endpoint: e, Auth: true})
			servers = append(servers, settings.ServerConfig{Addr: e.Host, Port: &port, Transport: &tr, TTL: &ttl})
		}
		var early []runtime.Transition // to a backup while the primary was up
		agent := runtime.NewAgent(simnet, runtime.WithClock(clock), runtime.WithSeed(1), runtime.WithPacing(pacing),
			runtime.WithWatcher(func(x runtime.Transition) {
				if x.To == "backup_registered" && x.At.Sub(start) < downAt {
					early = append(early, x)
				}
			}))
		lines := make([]*runtime.Line, n)
		for i := range lines {
			l, err := agent.AddLine(settings.LineConfig{Name: fmt.Sprintf("fleet-%d", i+1), User: fmt.Sprintf("2%04d", i+1), Password: "secret",
				Domain: "example.test", Servers: slices.Clone(servers), FailbackInterval: &interval, SignalRetryCounts: &retries,
				T1: settings.Duration(t1), KeepaliveInterval: settings.Duration(keepalive), TimerSpread: spread})
			if err != nil {
				t.Fatalf("line %d: %v", i+1, err)
			}
			lines[i] = l
		}
		// Every line starts at once: the storm pacing is for.
		for _, l := range lines {
			l.Register()
		}
		clock.Advance(downAt)
		simnet.Set(eps[0], func(s *runtimetest.SimServer) { s.Mode, s.Code = down, 503 })
		clock.Advance(downFor)
		simnet.Set(eps[0], func(s *runtimetest.SimServer) { s.Mode = runtimetest.SimUp })
		// Back on the primary within a failback interval, a probe's 64*T1,
		// the queue of the whole fleet at the rate, and a refresh.
		queue := time.Duration(float64(3*n) / pacing.Rate * float64(time.Second))
		clock.Advance(time.Duration(interval)*time.Second + 64*t1 + 2*queue + time.Duration(ttl)*time.Second)

		if len(early) > 0 {
			t.Fatalf("I12: %s moved to the backup at %v with the primary up (it goes down at %v): waiting for a turn was taken for silence",
				early[0].Line, early[0].At.Sub(start), downAt)
		}
		for i, e := range eps {
			if v := paceViolation(simnet.Requests(e), pacing); v != "" {
				t.Fatalf("I13: server %d: %s", i+1, v)
			}
		}
		for _, l := range lines {
			if st := l.Status(); !st.Registered || st.Server != 1 {
				t.Fatalf("I13: %s is %s on server %d at %v, not registered on the primary (up since %v)",
					l.Name(), l.State(), st.Server, clock.Now().Sub(start), downAt+downFor)
			}
		}
	})
}

// paceViolation checks that requests hold to p: for every two new
// transactions i <= j (a branch's first transmission), j-i+1 <= B +
// R*(t_j - t_i). Written from docs/requirements.md, not from the runtime's
// bucket: with a_k = k - R*t_k, the worst pair is the largest a_j - a_i.
func paceViolation(reqs []runtimetest.SimRequest, p settings.Pacing) string {
	seen := map[string]bool{}
	var at []time.Duration
	for _, r := range reqs {
		if !seen[r.Branch] {
			seen[r.Branch] = true
			at = append(at, r.At)
		}
	}
	const slack = 1e-6 // rounding of turns to the nanosecond
	low, lowAt := 0.0, time.Duration(0)
	for k, t := range at {
		a := float64(k) - p.Rate*t.Seconds()
		if k == 0 || a < low {
			low, lowAt = a, t
		}
		if a-low+1 > float64(p.Burst)+slack {
			return fmt.Sprintf("%.0f new transactions from %v to %v, more than %d + %v a second allow", a-low+1+p.Rate*(t-lowAt).Seconds(), lowAt, t, p.Burst, p.Rate)
		}
	}
	return ""
}
