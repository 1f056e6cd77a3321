package runtime

import "github.com/sipfailover/sipfailover/runtime/clock"

// Clock is where a line gets the time and its timers (runtime/clock).
type Clock = clock.Clock

// Timer is a pending call of a Clock.
type Timer = clock.Timer

// RealClock is the wall clock.
type RealClock = clock.Real
