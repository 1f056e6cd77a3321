package runtime

import (
	"sync"
	"time"

	"github.com/sipfailover/sipfailover/fsm"
)

// timerSet holds the model timers of one machine. Arming a running timer
// restarts it; a timer stopped or re-armed after it became due does not
// fire (a generation count tells). fire runs with mu held.
type timerSet[T comparable] struct {
	agent  *Agent
	mu     *sync.Mutex
	fire   func(T)
	timers map[T]*setTimer
}

type setTimer struct {
	t   Timer
	gen uint64
	due time.Time
}

func newTimerSet[T comparable](a *Agent, mu *sync.Mutex, fire func(T)) timerSet[T] {
	return timerSet[T]{agent: a, mu: mu, fire: fire, timers: map[T]*setTimer{}}
}

// arm starts (or restarts) t. Jitter takes 0 to jitter percent off at
// random (RFC 5626 section 4.5: the wait is 50-100 % of the bound).
func (s timerSet[T]) arm(t T, d time.Duration, jitter int) {
	if jitter > 0 {
		d -= time.Duration(s.agent.jitter(int64(d) * int64(jitter) / 100))
	}
	st := s.timers[t]
	if st == nil {
		st = &setTimer{}
		s.timers[t] = st
	} else if st.t != nil {
		st.t.Stop()
	}
	st.gen++
	gen := st.gen
	st.due = s.agent.clock.Now().Add(d)
	st.t = s.agent.clock.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if cur := s.timers[t]; cur == nil || cur.gen != gen {
			return
		}
		st.t = nil
		s.fire(t)
	})
}

// armModel is arm with the model's duration type.
func (s timerSet[T]) armModel(t T, after fsm.Duration, jitter int) {
	s.arm(t, time.Duration(after), jitter)
}

// extend puts t off by d if it runs: its request waited d for its turn
// (R21) after the timer was armed.
func (s timerSet[T]) extend(t T, d time.Duration) {
	if st := s.timers[t]; st != nil && st.t != nil && d > 0 {
		s.arm(t, st.due.Sub(s.agent.clock.Now())+d, 0)
	}
}

// cancel stops t if it runs.
func (s timerSet[T]) cancel(t T) {
	if st := s.timers[t]; st != nil && st.t != nil {
		st.t.Stop()
		st.t = nil
		st.gen++
	}
}

// stopAll stops every timer.
func (s timerSet[T]) stopAll() {
	for t := range s.timers {
		s.cancel(t)
	}
}
