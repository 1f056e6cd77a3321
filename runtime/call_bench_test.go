package runtime_test

import (
	"slices"
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/fsm"
	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/settings"
)

// BenchmarkCallFailover measures, with real sockets on loopback, what
// failover adds to a call (R6, R7), for each way the primary fails, with
// N=3 and T1=500ms:
//
//   - setup: from dialling, with the primary already failed, to the call
//     being answered through the backup;
//   - hangup: from hanging up a call set up through the primary, which has
//     just failed, to the BYE being answered through the backup.
//
// It reports the median time and the median above the protocol's bound:
// the detection of the failure (0 when the failure is the answer: 503 or
// ICMP; the Timer E total of three transmissions, 3.5s, for a silent
// primary) plus the same exchange on a healthy primary (its set-up, its
// hang-up), measured in the same run.
func BenchmarkCallFailover(b *testing.B) {
	cfg := func(c *settings.LineConfig) {
		c.T1 = settings.Duration(500 * time.Millisecond)
		c.T2 = settings.Duration(4 * time.Second)
	}
	healthy := func(b *testing.B) (setup, hangup time.Duration) {
		w := newCallBench(b, cfg)
		c, err := w.line.Dial("sip:1002@example.test")
		if err != nil {
			b.Fatal(err)
		}
		setup = waitCall(b, c, fsm.CallStateConfirmed, 5*time.Second)
		c.Hangup()
		return setup, waitCall(b, c, fsm.CallStateEnded, 5*time.Second)
	}
	for _, m := range failureModes {
		for _, phase := range []string{"setup", "hangup"} {
			b.Run(m.name+"/"+phase, func(b *testing.B) {
				var took, over []time.Duration
				for b.Loop() {
					b.StopTimer()
					baseSetup, baseHangup := healthy(b)
					w := newCallBench(b, cfg)
					var c *runtime.Call
					if phase == "hangup" {
						var err error
						if c, err = w.line.Dial("sip:1002@example.test"); err != nil {
							b.Fatal(err)
						}
						waitCall(b, c, fsm.CallStateConfirmed, 5*time.Second)
					}
					b.StartTimer()
					m.fail(w.primary)
					bound := m.bound(w.line.Config())
					var t time.Duration
					if phase == "setup" {
						var err error
						if c, err = w.line.Dial("sip:1002@example.test"); err != nil {
							b.Fatal(err)
						}
						t = waitCall(b, c, fsm.CallStateConfirmed, bound+5*time.Second)
						bound += baseSetup
					} else {
						c.Hangup()
						t = waitCall(b, c, fsm.CallStateEnded, bound+5*time.Second)
						bound += baseHangup
					}
					took, over = append(took, t), append(over, t-bound)
					b.StopTimer()
					waitPhone(b, w.phone, c.ID(), map[string]string{"setup": "up", "hangup": "ended"}[phase])
					b.StartTimer()
				}
				b.ReportMetric(float64(median(took).Microseconds())/1000, "ms")
				reportMedian(b, over)
			})
		}
	}
}

func median(samples []time.Duration) time.Duration {
	s := append([]time.Duration(nil), samples...)
	slices.Sort(s)
	return s[len(s)/2]
}
