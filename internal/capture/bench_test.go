package capture

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// BenchmarkAnalyze: a capture of 105,001 SIP packets (a registration and
// 15,000 calls of seven messages each) read and checked; frames/s is the
// rate. The interop suite measures the same on a capture SIPp made
// (TestCaptureThroughput).
func BenchmarkAnalyze(b *testing.B) {
	c := newCrafter(&testing.T{})
	c.register(0, primary, "reg-1", 1, 3600, false)
	for i := range 15000 {
		at := time.Second + time.Duration(i)*20*time.Millisecond
		c.call(at, at+10*time.Millisecond+500*time.Millisecond, primary, fmt.Sprintf("call-%d", i))
	}
	data := c.bytes()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	var frames int
	for b.Loop() {
		a, err := Analyze(bytes.NewReader(data), settings())
		if err != nil {
			b.Fatal(err)
		}
		r := a.Report("bench")
		if r.Violated() {
			b.Fatalf("a violation in a capture of good calls: %+v", r.Verdicts)
		}
		frames = r.Frames
	}
	b.ReportMetric(float64(frames)*float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}
