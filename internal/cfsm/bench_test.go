package cfsm

import (
	"fmt"
	"testing"

	"github.com/sipfailover/sipfailover/fsm"
)

// BenchmarkGoFire fires at the Go line machine the event stream that
// examples/c/bench.c fires at the C one (xorshift64 from the same seed, a
// new machine whenever one fails), for the two times side by side.
func BenchmarkGoFire(b *testing.B) {
	const ms, s = fsm.Duration(1e6), fsm.Duration(1e9)
	p := fsm.LineParams{ServerCount: 2, RegistrarCount: 1, FailbackEnabled: true, FailbackInterval: 30 * s, CountMode: true,
		RetryCounts: 3, RetryTime: 32 * s, T1: 500 * ms, T2: 4 * s, RefreshInterval: 60 * s,
		KeepaliveInterval: 30 * s, FlowInterval: 30 * s, BackoffBase: 30 * s, BackoffMax: 1800 * s, ContactShared: true}
	state := uint64(88172645463325252)
	m := fsm.NewLineMachine(p, nil)
	m.Start()
	var events uint64 // the model's events are 1..events
	for fsm.LineEvent(events+1).String() != fmt.Sprintf("LineEvent(%d)", events+1) {
		events++
	}
	for b.Loop() {
		state ^= state << 13
		state ^= state >> 7
		state ^= state << 17
		m.Fire(fsm.LineEvent(1 + state%events))
		if m.State() == fsm.LineStateFailed {
			m = fsm.NewLineMachine(p, nil)
			m.Start()
		}
	}
}
