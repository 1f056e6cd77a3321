package runtime

import (
	"fmt"
	"sync"
	"time"
)

// Pacing bounds what an agent's lines together start towards one server
// (R21): at most Burst new requests at once, then Rate a second. A request
// beyond the bound waits for its turn before its first transmission; its
// budget counts from that transmission, so that waiting is never taken for
// the server's silence. Retransmissions, ACKs and responses are never held.
type Pacing struct {
	// Rate is new requests a second to one server; 0 turns pacing off.
	Rate float64 `yaml:"rate" json:"rate"`
	// Burst is how many may go at once after a quiet spell; at least 1.
	Burst int `yaml:"burst" json:"burst"`
}

// DefaultPacing is the pacing of an agent whose settings do not say: far
// above what a handful of lines sends, well below what a fleet of
// thousands failing over at once would.
var DefaultPacing = Pacing{Rate: 500, Burst: 100}

// Validate says what is wrong with p, naming the field.
func (p Pacing) Validate() error {
	switch {
	case p.Rate < 0 || p.Rate > 1e6 || p.Rate != p.Rate:
		return fmt.Errorf("pacing.rate %v is outside 0 (off) to 1000000 requests a second", p.Rate)
	case p.Rate > 0 && (p.Burst < 1 || p.Burst > 1e6):
		return fmt.Errorf("pacing.burst %d is outside 1-1000000 (with a rate, at least one request goes at once)", p.Burst)
	}
	return nil
}

// WithPacing sets the agent's pacing; a zero Rate turns it off.
func WithPacing(p Pacing) Option { return func(a *Agent) { a.pace.Store(newPacer(p)) } }

// SetPacing changes the agent's pacing (the settings' pacing block
// changed); requests already given a turn keep it.
func (a *Agent) SetPacing(p Pacing) { a.pace.Store(newPacer(p)) }

// pacer is a token bucket per server (by address, port and transport).
type pacer struct {
	p       Pacing
	mu      sync.Mutex
	buckets map[serverAddr]*bucket
}

type bucket struct {
	tokens float64   // may go below zero: the requests already promised a later turn
	at     time.Time // when tokens was last brought up to date
}

func newPacer(p Pacing) *pacer {
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
