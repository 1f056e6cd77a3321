package runtime_test

import (
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/runtimetest"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
)

// TestFaultAt: a failure's transition says when the fault the line saw
// began: the first transmission of the request that went unanswered (a
// refresh, an OPTIONS keep-alive) or failed (ICMP for it), not the moment
// the line gave up on it. A fleet's failover times count from there.
func TestFaultAt(t *testing.T) {
	for _, c := range []struct {
		name   string
		method string // the request whose first transmission the fault began with
		fail   func(*runtimetest.SimServer)
		tweak  func(*settings.LineConfig)
	}{
		{"refresh unanswered", "REGISTER", func(s *runtimetest.SimServer) { s.Mode = runtimetest.SimSilent }, nil},
		{"refresh answered by ICMP", "REGISTER", func(s *runtimetest.SimServer) { s.Mode = runtimetest.SimICMP }, nil},
		{"keep-alive unanswered", "OPTIONS", func(s *runtimetest.SimServer) { s.Mode = runtimetest.SimSilent },
			func(l *settings.LineConfig) { l.KeepaliveInterval = settings.Duration(20 * time.Second) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			var left []runtime.Transition
			p := newSimPair(t, transport.UDP, 10*time.Millisecond, func(l *settings.LineConfig) {
				ttl := 60
				l.NATKeepaliveInterval = new(settings.Duration(0))
				l.Servers[0].TTL, l.Servers[1].TTL = &ttl, &ttl
				if c.tweak != nil {
					c.tweak(l)
				}
			}, runtime.WithWatcher(func(tr runtime.Transition) {
				if tr.From == "primary_registered" && tr.To != tr.From {
					left = append(left, tr)
				}
			}))
			clock, network, primary := p.clock, p.network, p.primary
			p.line.Register()
			clock.Advance(time.Second)
			network.Set(primary, c.fail)
			failedAt := clock.Now()
			clock.Advance(2 * time.Minute)
			if len(left) == 0 {
				t.Fatal("the line never left the primary")
			}
			tr := left[0]
			want := simStart.Add(firstSent(network.Requests(primary), c.method, failedAt.Sub(simStart)))
			if !tr.FaultAt.Equal(want) {
				t.Errorf("left the primary at %v on %s; fault at %v, want %v (the %s's first transmission)", tr.At, tr.Event, tr.FaultAt, want, c.method)
			}
			if tr.Event != "transport.icmp" && !tr.FaultAt.Before(tr.At) {
				t.Errorf("fault at %v, not before the line gave up at %v", tr.FaultAt, tr.At)
			}
		})
	}
}

// firstSent is when the first request of method after from went out.
func firstSent(rs []runtimetest.SimRequest, method string, from time.Duration) time.Duration {
	for _, r := range rs {
		if r.Method == method && r.At >= from {
			return r.At
		}
	}
	return -1
}
