package pace

import (
	"slices"
	"testing"
	"time"
)

// TestTurns: a burst of two goes at once, the third waits a tenth of a
// second (rounded up by a nanosecond), the fourth two tenths; each key has
// its own bucket, and a quiet spell fills it again up to the burst.
func TestTurns(t *testing.T) {
	p := New[string](10, 2)
	t0 := time.Unix(0, 0)
	var waits []time.Duration
	for range 4 {
		waits = append(waits, p.Reserve("backup", t0))
	}
	want := []time.Duration{0, 0, 100*time.Millisecond + 1, 200*time.Millisecond + 1}
	if !slices.Equal(waits, want) {
		t.Fatalf("waits %v, want %v", waits, want)
	}
	if w := p.Reserve("primary", t0); w != 0 {
		t.Fatalf("another key waited %v", w)
	}
	t1 := t0.Add(10 * time.Second)
	waits = nil
	for range 3 {
		waits = append(waits, p.Reserve("backup", t1))
	}
	if want := want[:3]; !slices.Equal(waits, want) {
		t.Fatalf("after a quiet spell waits %v, want %v: the bucket holds the burst, no more", waits, want)
	}
}

// TestOff: a rate of 0 gives a nil pacer, and a nil pacer never waits.
func TestOff(t *testing.T) {
	p := New[int](0, 5)
	if p != nil {
		t.Fatal("rate 0 gave a pacer")
	}
	for range 100 {
		if w := p.Reserve(1, time.Unix(0, 0)); w != 0 {
			t.Fatalf("a nil pacer made a request wait %v", w)
		}
	}
}
