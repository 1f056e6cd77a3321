// Package proptest holds the property-based tests (pgregory.net/rapid) that
// check the invariants of SPEC.md.
//
// model_test.go drives the generated machines of model/*.yaml directly, in
// virtual time, with random events: every step must be a transition the
// model allows, looplab/fsm must agree with the machine, every always-
// invariant must hold, timers must fire only while armed, the bounded
// leads-to invariants must hold, and over the default number of checks every
// branch of every transition must be taken.
//
// Run a long search, or replay a failure, with rapid's flags:
//
//	go test ./proptest -rapid.checks=100000
//	go test ./proptest -run TestLineModel -rapid.seed=N
package proptest
