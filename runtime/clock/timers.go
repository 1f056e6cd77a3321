package clock

import (
	"sync"
	"time"

	"github.com/sipfailover/sipfailover/fsm"
)

// Timers holds the model timers of one machine, named by the machine's
// timer type. Arming a running timer restarts it; a timer stopped or
// re-armed after it became due does not fire (a generation count tells).
// Every method is called with the machine's lock held, and fire runs with
// it held.
type Timers[T comparable] struct {
	clock  Clock
	mu     *sync.Mutex
	draw   func(n int64) int64 // a number in [0, n], for jitter
	fire   func(T)
	timers map[T]*timer
}

type timer struct {
	t   Timer
	gen uint64
	due time.Time
}

// NewTimers returns the timers of a machine guarded by mu: fire is called
// with mu held when one becomes due, and draw(n) returns a number in
// [0, n] for the jitter a model asks for.
func NewTimers[T comparable](c Clock, mu *sync.Mutex, draw func(n int64) int64, fire func(T)) Timers[T] {
	return Timers[T]{clock: c, mu: mu, draw: draw, fire: fire, timers: map[T]*timer{}}
}

// Arm starts (or restarts) t, due after the model's duration less a
// jitter: 0 to jitter percent of it taken off at random (RFC 5626 section
// 4.5: the wait is 50-100 % of the bound). Its signature is the one a
// generated effect's Run takes.
func (s Timers[T]) Arm(t T, after fsm.Duration, jitter int) {
	d := time.Duration(after)
	if jitter > 0 {
		d -= time.Duration(s.draw(int64(d) * int64(jitter) / 100))
	}
	s.arm(t, d)
}

func (s Timers[T]) arm(t T, d time.Duration) {
	st := s.timers[t]
	if st == nil {
		st = &timer{}
		s.timers[t] = st
	} else if st.t != nil {
		st.t.Stop()
	}
	st.gen++
	gen := st.gen
	st.due = s.clock.Now().Add(d)
	st.t = s.clock.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if cur := s.timers[t]; cur == nil || cur.gen != gen {
			return
		}
		st.t = nil
		s.fire(t)
	})
}

// Extend puts t off by d if it runs: its request waited d for its turn
// (R21 of docs/requirements.md) after the timer was armed.
func (s Timers[T]) Extend(t T, d time.Duration) {
	if st := s.timers[t]; st != nil && st.t != nil && d > 0 {
		s.arm(t, st.due.Sub(s.clock.Now())+d)
	}
}

// Cancel stops t if it runs.
func (s Timers[T]) Cancel(t T) {
	if st := s.timers[t]; st != nil && st.t != nil {
		st.t.Stop()
		st.t = nil
		st.gen++
	}
}

// StopAll stops every timer.
func (s Timers[T]) StopAll() {
	for t := range s.timers {
		s.Cancel(t)
	}
}
