package runtimetest

import (
	"container/heap"
	"sync"
	"time"

	"github.com/sipfailover/sipfailover/runtime/clock"
)

// VirtualClock is a clock.Clock whose time moves only when the test says.
// Due timers fire in deadline order, one at a time, on the goroutine that
// advances the clock; ties fire in the order they were set.
type VirtualClock struct {
	mu     sync.Mutex
	now    time.Time
	seq    uint64
	timers timerHeap
}

// NewVirtualClock returns a clock that reads start until advanced.
func NewVirtualClock(start time.Time) *VirtualClock { return &VirtualClock{now: start} }

// Now returns the virtual time.
func (c *VirtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f at Now()+d.
func (c *VirtualClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &vtimer{clock: c, at: c.now.Add(max(d, 0)), seq: c.seq, f: f, index: -1}
	heap.Push(&c.timers, t)
	return t
}

// Advance moves time forward by d, firing every timer due on the way, and
// timers those timers set, in deadline order.
func (c *VirtualClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for c.fireNext(end) {
	}
	c.mu.Lock()
	c.now = end
	c.mu.Unlock()
}

// AdvanceToNext moves time to the next timer and fires it; it reports false
// when no timer is pending.
func (c *VirtualClock) AdvanceToNext() bool {
	c.mu.Lock()
	if len(c.timers) == 0 {
		c.mu.Unlock()
		return false
	}
	at := c.timers[0].at
	c.mu.Unlock()
	return c.fireNext(at)
}

// Pending returns how many timers are set.
func (c *VirtualClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// fireNext fires the earliest timer due at or before end.
func (c *VirtualClock) fireNext(end time.Time) bool {
	c.mu.Lock()
	if len(c.timers) == 0 || c.timers[0].at.After(end) {
		c.mu.Unlock()
		return false
	}
	t := heap.Pop(&c.timers).(*vtimer)
	if t.at.After(c.now) {
		c.now = t.at
	}
	c.mu.Unlock()
	t.f()
	return true
}

type vtimer struct {
	clock *VirtualClock
	at    time.Time
	seq   uint64
	f     func()
	index int
}

func (t *vtimer) Stop() bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.index < 0 {
		return false
	}
	heap.Remove(&c.timers, t.index)
	return true
}

type timerHeap []*vtimer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *timerHeap) Push(x any) {
	t := x.(*vtimer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*h = old[:len(old)-1]
	return t
}
