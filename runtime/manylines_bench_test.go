package runtime_test

import (
	goruntime "runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/runtimetest"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
)

// benchPacing is the fleet's pacing in BenchmarkManyLines: the primary
// hears at most 200 new requests at once, then 2000 a second (R21, I13).
var benchPacing = settings.Pacing{Rate: 2000, Burst: 200}

// BenchmarkManyLines registers N lines of one agent against one
// loopback primary and backup (UDP, digest), as a fleet simulator would,
// every line at once, paced by benchPacing. It reports the heap each
// registered line holds, the goroutines of the whole process per line,
// the time for all to register, the most requests the primary heard in
// one second (at most burst + rate), and the lines that failed over.
func BenchmarkManyLines(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(strconv.Itoa(n)+"lines", func(b *testing.B) {
			for b.Loop() {
				heap, goroutines, took, peak, failedOver := manyLines(b, n)
				b.ReportMetric(heap, "heap-B/line")
				b.ReportMetric(goroutines, "goroutines/line")
				b.ReportMetric(took.Seconds()*1000, "ms-to-register-all")
				b.ReportMetric(float64(peak), "peak-requests-in-1s")
				b.ReportMetric(float64(failedOver), "failed-over")
				// Pacing bounds what the agent sends in any second; the
				// primary hears it with each datagram's own delay, so a
				// second of its arrivals may hold 10 ms more of sending.
				if limit := benchPacing.Burst + int(benchPacing.Rate*1.01); peak > limit {
					b.Errorf("the primary heard %d requests in one second; pacing allows %d, and 10 ms of transit", peak, limit)
				}
			}
		})
	}
}

// peakInASecond is the most of seen that fall in one second.
func peakInASecond(seen []runtimetest.Seen) int {
	seen = slices.Clone(seen)
	slices.SortFunc(seen, func(x, y runtimetest.Seen) int { return x.At.Compare(y.At) })
	peak, i := 0, 0
	for j := range seen {
		for seen[j].At.Sub(seen[i].At) >= time.Second {
			i++
		}
		peak = max(peak, j-i+1)
	}
	return peak
}

// manyLines registers n lines of one agent against a primary and a backup
// registrar of its own, and returns the heap each registered line holds:
// measured after the registrars are stopped and dropped, so that what they
// keep of each registration (this process holds them too) is not counted.
func manyLines(b *testing.B, n int) (heap, goroutines float64, took time.Duration, peak, failedOver int) {
	b.Helper()
	primary := &runtimetest.Registrar{Name: "primary", User: "1001", Password: "pw"}
	backup := &runtimetest.Registrar{Name: "backup", User: "1001", Password: "pw"}
	for _, r := range []*runtimetest.Registrar{primary, backup} {
		if err := r.Start(); err != nil {
			b.Fatal(err)
		}
	}
	pp, bp := primary.Port(), backup.Port()
	network := transport.NewSocketNetwork(nil, nil)
	defer network.Close()
	agent := runtime.NewAgent(network, runtime.WithPacing(benchPacing))
	goruntime.GC()
	var before, after goruntime.MemStats
	goruntime.ReadMemStats(&before)
	g0 := goruntime.NumGoroutine()
	lines := make([]*runtime.Line, n)
	for i := range lines {
		l, err := agent.AddLine(settings.LineConfig{User: "1001", Password: "pw", Servers: []settings.ServerConfig{
			{Addr: "127.0.0.1", Port: &pp}, {Addr: "127.0.0.1", Port: &bp}}})
		if err != nil {
			b.Fatal(err)
		}
		lines[i] = l
	}
	start := time.Now()
	for _, l := range lines {
		l.Register()
	}
	for _, l := range lines {
		for !l.Status().Registered {
			if time.Since(start) > 2*time.Minute {
				b.Fatalf("a line is %s after two minutes", l.State())
			}
			time.Sleep(time.Millisecond)
		}
		if l.Status().Server != 1 {
			failedOver++
		}
	}
	took = time.Since(start)
	peak = peakInASecond(primary.Seen())
	goroutines = float64(goruntime.NumGoroutine()-g0) / float64(n)
	primary.Stop()
	backup.Stop()
	primary, backup = nil, nil
	goruntime.GC()
	goruntime.ReadMemStats(&after)
	heap = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
	goruntime.KeepAlive(lines)
	return heap, goroutines, took, peak, failedOver
}
