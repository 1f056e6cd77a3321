package runtime_test

import (
	"slices"
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/runtime/runtimetest"
	"github.com/sipfailover/sipfailover/runtime/settings"
)

// BenchmarkFailover measures, with real sockets on loopback, the time from
// a manual registration with the primary failing to the line being
// registered on the backup (digest included), for each failure mode, with
// N=3 and T1=500ms. It reports the median time above the protocol bound:
// 0 for 503, ICMP and TCP refused (the failure is the answer), the Timer E
// total of three transmissions (3.5s) for a silent primary.
func BenchmarkFailover(b *testing.B) {
	modes := []struct {
		name    string
		network string
		fail    func(*runtimetest.Registrar)
		bound   time.Duration
	}{
		{"503", "udp", func(r *runtimetest.Registrar) { r.SetAnswer(503, 0) }, 0},
		{"ICMP", "udp", (*runtimetest.Registrar).Stop, 0},
		{"TCPRefused", "tcp", (*runtimetest.Registrar).Stop, 0},
		{"Silent", "udp", func(r *runtimetest.Registrar) { r.SetMode(runtimetest.Silent) }, 3500 * time.Millisecond},
	}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			w := newBench(b, m.network, func(c *settings.LineConfig) {
				c.T1 = settings.Duration(500 * time.Millisecond)
				c.T2 = settings.Duration(4 * time.Second)
			})
			m.fail(w.primary)
			var over []time.Duration
			for b.Loop() {
				w.line.Register()
				took := w.waitState("backup_registered", m.bound+5*time.Second)
				over = append(over, took-m.bound)
			}
			reportMedian(b, over)
		})
	}
}

// BenchmarkFailback measures the time from the failback timer being due to
// the line being registered on the primary again, with the primary back
// (bound: the Failback Interval, 1s, plus one round trip).
func BenchmarkFailback(b *testing.B) {
	one := 1
	w := newBench(b, "udp", func(c *settings.LineConfig) { c.FailbackInterval = &one })
	var over []time.Duration
	for b.Loop() {
		w.primary.Stop()
		w.line.Register()
		w.waitState("backup_registered", 5*time.Second)
		if err := w.primary.Start(); err != nil {
			b.Fatal(err)
		}
		took := w.waitState("primary_registered", 5*time.Second)
		over = append(over, took-time.Second)
	}
	reportMedian(b, over)
}

func reportMedian(b *testing.B, samples []time.Duration) {
	slices.Sort(samples)
	if len(samples) == 0 {
		return
	}
	med := samples[len(samples)/2]
	b.ReportMetric(float64(med.Microseconds())/1000, "ms-over-bound")
	b.ReportMetric(float64(samples[len(samples)-1].Microseconds())/1000, "ms-over-bound-max")
}
