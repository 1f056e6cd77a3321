// Package clock is where the runtime gets the time and its timers, and
// where the timers of the generated machines are kept.
//
// The runtime never reads the wall clock or sleeps in its logic: it asks a
// Clock. Real is the wall clock; tests pass a virtual one
// (runtimetest.VirtualClock) and run a day of a phone's life in
// milliseconds. Timers holds the named timers of one machine (the line's
// budget, refresh and failback timers, a call's ACK wait ...) as the
// model arms and cancels them, so that a timer stopped or re-armed after
// it became due never fires late.
//
// It knows durations and callbacks, not SIP or lines.
package clock

import "time"

// Clock is where a line gets the time and its timers.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed, unless the
	// returned timer is stopped first.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending call of a Clock.
type Timer interface {
	// Stop prevents the call if it has not started; it reports whether it did.
	Stop() bool
}

// Real is the wall clock.
type Real struct{}

// Now returns the current time.
func (Real) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (Real) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
