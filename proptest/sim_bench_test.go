package proptest

import (
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/runtimetest"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
)

// BenchmarkSimulatedDay runs a line through one simulated day: OPTIONS every
// 30s, a 3600s registration, failback every 600s, and the primary down for
// 30 minutes every 3 hours. It reports simulated seconds per wall second.
func BenchmarkSimulatedDay(b *testing.B) {
	for b.Loop() {
		clock := runtimetest.NewVirtualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		network := runtimetest.NewSimNetwork(clock, 10*time.Millisecond)
		port, interval := 5060, 600
		var eps []transport.Endpoint
		cfg := settings.LineConfig{User: "1001", Password: "pw", FailbackInterval: &interval, KeepaliveInterval: settings.Duration(30 * time.Second)}
		for _, host := range []string{"127.0.1.1", "127.0.1.2"} {
			cfg.Servers = append(cfg.Servers, settings.ServerConfig{Addr: host, Port: &port})
			e := transport.Endpoint{Host: host, Port: port}
			eps = append(eps, e)
			network.Add(&runtimetest.SimServer{Endpoint: e, Auth: true})
		}
		line, err := runtime.NewAgent(network, runtime.WithClock(clock)).AddLine(cfg)
		if err != nil {
			b.Fatal(err)
		}
		line.Register()
		for range 8 {
			clock.Advance(150 * time.Minute)
			network.Set(eps[0], func(s *runtimetest.SimServer) { s.Mode = runtimetest.SimICMP })
			clock.Advance(30 * time.Minute)
			network.Set(eps[0], func(s *runtimetest.SimServer) { s.Mode = runtimetest.SimUp })
		}
		if st := line.Status(); !st.Registered {
			b.Fatalf("line not registered after the day: %+v", st)
		}
	}
	b.ReportMetric(float64(24*time.Hour/time.Second)*float64(b.N)/b.Elapsed().Seconds(), "sim-s/s")
}

// BenchmarkRuntimeChecks measures property checks of TestRuntimeInvariants
// per second (each check: one drawn line and about 30 random steps, with the
// whole trace judged after every step).
func BenchmarkRuntimeChecks(b *testing.B) {
	cov := coverage{}
	checks := 0
	for b.Loop() {
		rapid.Check(b, func(t *rapid.T) {
			checks++
			w := newWorld(t, cov)
			w.line.Register()
			w.trace.Users = append(w.trace.Users, 0)
			t.Repeat(runtimeActions(w))
		})
	}
	b.ReportMetric(float64(checks)/b.Elapsed().Seconds(), "checks/s")
}
