package proptest

import (
	"cmp"
	"slices"
	"time"

	"pgregory.net/rapid"

	"github.com/sipfailover/sipfailover/fsm"
)

// wheel is a virtual clock with one-shot timers, as the runtime keeps them:
// arming a running timer restarts it.
type wheel[T cmp.Ordered] struct {
	now      time.Duration
	deadline map[T]time.Duration
}

func newWheel[T cmp.Ordered]() *wheel[T] { return &wheel[T]{deadline: map[T]time.Duration{}} }

func (w *wheel[T]) arm(t T, after fsm.Duration, jitterPct int, draw func(max int) int) {
	d := time.Duration(after)
	if jitterPct > 0 {
		// Take off between 0 and jitterPct percent, as the runtime does.
		d -= d * time.Duration(draw(jitterPct)) / 100
	}
	w.deadline[t] = w.now + d
}

// armer returns an arm function for generated effects' Run that fails the
// check on a timer armed for no time (it would fire at once, forever).
func (w *wheel[T]) armer(t *rapid.T, draw func(max int) int) func(T, fsm.Duration, int) {
	return func(tm T, after fsm.Duration, jitter int) {
		if after <= 0 {
			t.Fatalf("armed %v with duration %d", tm, after)
		}
		w.arm(tm, after, jitter, draw)
	}
}

func (w *wheel[T]) cancel(t T) { delete(w.deadline, t) }

// next returns the timer due first; ties go to the smaller timer so that a
// run replays exactly.
func (w *wheel[T]) next() (T, bool) {
	var best T
	found := false
	keys := make([]T, 0, len(w.deadline))
	for t := range w.deadline {
		keys = append(keys, t)
	}
	slices.Sort(keys)
	for _, t := range keys {
		if !found || w.deadline[t] < w.deadline[best] {
			best, found = t, true
		}
	}
	return best, found
}

// fire advances to the timer's deadline and removes it.
func (w *wheel[T]) fire(t T) {
	w.now = w.deadline[t]
	delete(w.deadline, t)
}
