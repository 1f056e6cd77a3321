package clock_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/fsm"
	"github.com/sipfailover/sipfailover/runtime/clock"
)

// manualClock records each AfterFunc and runs none by itself; its timers'
// Stop never wins, as when the call is already under way, blocked on the
// machine's lock.
type manualClock struct {
	now     time.Time
	pending []pendingCall
}

type pendingCall struct {
	d time.Duration
	f func()
}

func (c *manualClock) Now() time.Time { return c.now }

func (c *manualClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	c.pending = append(c.pending, pendingCall{d, f})
	return lateTimer{}
}

type lateTimer struct{}

func (lateTimer) Stop() bool { return false }

func newTimers(c *manualClock, fired *[]string) clock.Timers[string] {
	var mu sync.Mutex
	return clock.NewTimers(c, &mu, func(n int64) int64 { return n }, func(t string) { *fired = append(*fired, t) })
}

// TestRearmedTimerFiresOnce: a timer re-armed after its first arming
// became due fires once, for the second arming, even though the clock
// could not stop the first.
func TestRearmedTimerFiresOnce(t *testing.T) {
	c := &manualClock{now: time.Unix(0, 0)}
	var fired []string
	ts := newTimers(c, &fired)
	ts.Arm("budget", fsm.Duration(time.Second), 0)
	ts.Arm("budget", fsm.Duration(2*time.Second), 0)
	for _, p := range c.pending {
		p.f()
	}
	if !slices.Equal(fired, []string{"budget"}) {
		t.Fatalf("fired %v, want budget once", fired)
	}
}

// TestCancelledTimerNeverFires: a timer cancelled after it became due does
// not fire; one cancelled while not armed is no error.
func TestCancelledTimerNeverFires(t *testing.T) {
	c := &manualClock{now: time.Unix(0, 0)}
	var fired []string
	ts := newTimers(c, &fired)
	ts.Cancel("refresh")
	ts.Arm("refresh", fsm.Duration(time.Second), 0)
	ts.Arm("failback", fsm.Duration(time.Second), 0)
	ts.Cancel("refresh")
	for _, p := range c.pending {
		p.f()
	}
	if !slices.Equal(fired, []string{"failback"}) {
		t.Fatalf("fired %v, want failback alone", fired)
	}
	fired, c.pending = nil, nil
	ts.Arm("refresh", fsm.Duration(time.Second), 0)
	ts.Arm("failback", fsm.Duration(time.Second), 0)
	ts.StopAll()
	for _, p := range c.pending {
		p.f()
	}
	if len(fired) != 0 {
		t.Fatalf("fired %v after StopAll", fired)
	}
}

// TestJitterAndExtend: a jitter of 20 % takes up to a fifth off the wait
// (here the most, as the draw returns its bound), and Extend puts a
// running timer off from its due time, not from now.
func TestJitterAndExtend(t *testing.T) {
	c := &manualClock{now: time.Unix(0, 0)}
	var fired []string
	ts := newTimers(c, &fired)
	ts.Arm("keepalive", fsm.Duration(10*time.Second), 20)
	c.now = c.now.Add(3 * time.Second)
	ts.Extend("keepalive", 2*time.Second)
	ts.Extend("idle", 2*time.Second) // not armed: nothing
	ts.Extend("keepalive", 0)        // no wait: nothing
	var waits []time.Duration
	for _, p := range c.pending {
		waits = append(waits, p.d)
	}
	if want := []time.Duration{8 * time.Second, 7 * time.Second}; !slices.Equal(waits, want) {
		t.Fatalf("waits %v, want %v (8 s after jitter, then due at 8+2 s from the start, 3 s on)", waits, want)
	}
	c.pending[1].f()
	if !slices.Equal(fired, []string{"keepalive"}) {
		t.Fatalf("fired %v", fired)
	}
}
