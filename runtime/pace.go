package runtime

import (
	"sync"
	"time"

	"github.com/sipfailover/sipfailover/runtime/settings"
)

// WithPacing sets the agent's pacing; a zero Rate turns it off.
func WithPacing(p settings.Pacing) Option { return func(a *Agent) { a.pace.Store(newPacer(p)) } }

// SetPacing changes the agent's pacing (the settings' pacing block
// changed); requests already given a turn keep it.
func (a *Agent) SetPacing(p settings.Pacing) { a.pace.Store(newPacer(p)) }

// pacer is a token bucket per server (by address, port and transport).
type pacer struct {
	p       settings.Pacing
	mu      sync.Mutex
	buckets map[serverAddr]*bucket
}

type bucket struct {
	tokens float64   // may go below zero: the requests already promised a later turn
	at     time.Time // when tokens was last brought up to date
}

func newPacer(p settings.Pacing) *pacer {
	if p.Rate <= 0 {
		return nil
	}
	return &pacer{p: p, buckets: map[serverAddr]*bucket{}}
}

// reserve takes a turn for one new request to dst at now, and returns how
// long it must wait for it; a nil pacer never waits.
func (pc *pacer) reserve(dst serverAddr, now time.Time) time.Duration {
	if pc == nil {
		return 0
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	b := pc.buckets[dst]
	if b == nil {
		b = &bucket{tokens: float64(pc.p.Burst), at: now}
		pc.buckets[dst] = b
	}
	if now.After(b.at) {
		b.tokens = min(float64(pc.p.Burst), b.tokens+now.Sub(b.at).Seconds()*pc.p.Rate)
		b.at = now
	}
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	// Round up: a turn handed out a nanosecond early would break the bound.
	return time.Duration(-b.tokens/pc.p.Rate*float64(time.Second)) + 1
}
