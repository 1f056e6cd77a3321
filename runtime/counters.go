package runtime

import (
	"sync"
	"sync/atomic"
	"time"
)

// Counters are what the agent dropped or refused at the edge, for
// metrics: nothing here ever reached a line.
type Counters struct {
	// UnparsableMessages could not be parsed at all.
	UnparsableMessages uint64
	// BadRequests were answered with a 4xx or 505 at the edge (RFC 3261 8.2).
	BadRequests uint64
	// BadResponses lacked a mandatory header and were dropped.
	BadResponses uint64
	// UnmatchedResponses matched no transaction in flight (another Call-ID,
	// CSeq, From tag, method or source than the request's) and were dropped.
	UnmatchedResponses uint64
	// Panics is how many messages a contained panic stopped; each is a bug.
	Panics uint64
	// RejectedCalls were incoming INVITEs refused for a call limit (486).
	RejectedCalls uint64
}

type counters struct {
	unparsable, badRequests, badResponses, unmatched, panics, rejectedCalls atomic.Uint64
}

func (c *counters) snapshot() Counters {
	return Counters{UnparsableMessages: c.unparsable.Load(), BadRequests: c.badRequests.Load(), BadResponses: c.badResponses.Load(),
		UnmatchedResponses: c.unmatched.Load(), Panics: c.panics.Load(), RejectedCalls: c.rejectedCalls.Load()}
}

// logLimit lets through a few log lines per source and window, so that a
// server sending garbage cannot fill the disk; the rest are counted only.
type logLimit struct {
	clock  Clock
	window time.Duration
	burst  int

	mu      sync.Mutex
	started time.Time
	seen    map[string]int
}

func newLogLimit(clock Clock) *logLimit {
	return &logLimit{clock: clock, window: time.Minute, burst: 5, seen: map[string]int{}}
}

// allow says whether one more line about source may be logged now.
func (l *logLimit) allow(source string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	if now.Sub(l.started) >= l.window || len(l.seen) > 10000 {
		l.started, l.seen = now, map[string]int{}
	}
	l.seen[source]++
	return l.seen[source] <= l.burst
}
