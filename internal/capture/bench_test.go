package capture

import (
	"bytes"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
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
	calls(c, 15000)
	b.ReportAllocs()
	benchAnalyze(b, c.bytes(), func(r Report) {
		if r.Violated() {
			b.Fatalf("a violation in a capture of good calls: %+v", r.Verdicts)
		}
	})
}

// BenchmarkAnalyzeUnregisteredCalls: 15,000 calls from a phone that never
// registered, as SIPp's built-in caller makes them (TestCaptureThroughput):
// every INVITE breaks I5, and each finding looks for a refresh in flight.
// That look went through every transaction of the line, once for each
// INVITE: 93 s for SIPp's 102,000 frames, now under a second.
func BenchmarkAnalyzeUnregisteredCalls(b *testing.B) {
	c := newCrafter(&testing.T{})
	calls(c, 15000)
	benchAnalyze(b, c.bytes(), func(r Report) {
		if v := r.Verdicts[4]; v.ID != "I5" || len(v.Findings) != 15000 {
			b.Fatalf("%s with %d findings, want I5 with one for each INVITE", v.ID, len(v.Findings))
		}
	})
}

// benchAnalyze analyzes the capture data once a loop of b, checks each
// report, and reports the frames a second.
func benchAnalyze(b *testing.B, data []byte, check func(Report)) {
	b.SetBytes(int64(len(data)))
	var frames int
	for b.Loop() {
		a, err := Analyze(bytes.NewReader(data), settings())
		if err != nil {
			b.Fatal(err)
		}
		r := a.Report("bench")
		check(r)
		frames = r.Frames
	}
	b.ReportMetric(float64(frames)*float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}

// calls writes n calls of seven messages each through the primary, one
// every 20 ms from the first second on.
func calls(c *crafter, n int) {
	for i := range n {
		at := time.Second + time.Duration(i)*20*time.Millisecond
		c.call(at, at+10*time.Millisecond+500*time.Millisecond, primary, fmt.Sprintf("call-%d", i))
	}
}

// BenchmarkNonSIPFrames: a capture of one registration among 200,000 UDP
// datagrams of another protocol (RTP, say) between other ports; what the
// checks keep of it once read, in bytes a frame (retained-B/frame), must
// not grow with such frames: the reader lets them go.
func BenchmarkNonSIPFrames(b *testing.B) {
	const n = 200000
	c := newCrafter(&testing.T{})
	c.register(0, primary, "reg-1", 1, 3600, false)
	media, far := netip.MustParseAddrPort("127.0.0.1:40000"), netip.MustParseAddrPort("127.0.0.9:40002")
	payload := strings.Repeat("\x80", 172) // an RTP packet of 20 ms of G.711
	for i := range n {
		c.udp(time.Second+time.Duration(i)*20*time.Millisecond, media, far, payload)
	}
	data := c.bytes()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	var before, after runtime.MemStats
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		a, err := Analyze(bytes.NewReader(data), settings())
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if a.Packets != n+2 || a.Messages != 2 {
			b.Fatalf("%d frames, %d SIP messages; want %d and 2", a.Packets, a.Messages, n+2)
		}
		runtime.KeepAlive(a)
	}
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/n, "retained-B/frame")
}
