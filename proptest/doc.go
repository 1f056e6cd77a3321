// Package proptest holds the property-based tests (pgregory.net/rapid) that
// check the invariants of docs/requirements.md.
//
// model_test.go, request_model_test.go and call_model_test.go drive the
// generated machines of model/*.yaml directly, in virtual time, with random
// events: every step must be a transition the model allows, looplab/fsm
// must agree with the machine, every always-invariant must hold, timers
// must fire only while armed, the bounded leads-to invariants must hold,
// and over the default number of checks every branch of every transition
// must be taken.
//
// runtime_test.go drives the real runtime (runtime.Line, over the simulated
// network of runtimetest, on its virtual clock) with random server faults
// and recoveries, user actions and time, and judges the whole trace with
// Check after every step: I1-I10 of docs/requirements.md (I5 and I10 on the requests
// and calls the user makes). A failure prints the shrunk run as a scenario
// script for runtime/testdata, and rapid's seed.
//
// Run a long search, or replay a failure, with rapid's flags:
//
//	go test ./proptest -rapid.checks=100000
//	go test ./proptest -run TestLineModel -rapid.seed=N
package proptest
