// Package pace spaces out new requests to one server (R21 of
// docs/requirements.md): a token bucket per server, so that a thousand
// lines failing over together do not arrive on the backup as one flood.
//
// A Pacer hands out turns and says how long a request waits for its own;
// it never sleeps, sends or reads the clock (the caller passes the time),
// so the runtime's drivers arm the wait on their own clock and tests run
// it in virtual time. It knows keys and times, not SIP.
package pace

import (
	"sync"
	"time"
)

// Pacer is a token bucket per key: at most burst requests at once after a
// quiet spell, then rate a second. A nil Pacer never makes anyone wait.
type Pacer[K comparable] struct {
	rate    float64
	burst   int
	mu      sync.Mutex
	buckets map[K]*bucket
}

type bucket struct {
	tokens float64   // may go below zero: the requests already promised a later turn
	at     time.Time // when tokens was last brought up to date
}

// New returns a pacer of rate requests a second per key with the given
// burst (at least 1); nil, which never waits, when rate is not positive.
func New[K comparable](rate float64, burst int) *Pacer[K] {
	if rate <= 0 {
		return nil
	}
	return &Pacer[K]{rate: rate, burst: max(burst, 1), buckets: map[K]*bucket{}}
}

// Reserve takes a turn for one new request to key at now, and returns how
// long it must wait for it.
func (pc *Pacer[K]) Reserve(key K, now time.Time) time.Duration {
	if pc == nil {
		return 0
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	b := pc.buckets[key]
	if b == nil {
		b = &bucket{tokens: float64(pc.burst), at: now}
		pc.buckets[key] = b
	}
	if now.After(b.at) {
		b.tokens = min(float64(pc.burst), b.tokens+now.Sub(b.at).Seconds()*pc.rate)
		b.at = now
	}
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	// Round up: a turn handed out a nanosecond early would break the bound.
	return time.Duration(-b.tokens/pc.rate*float64(time.Second)) + 1
}
