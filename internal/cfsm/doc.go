// Package cfsm holds the generated C machines of fsm/c equal to the Go
// machines of fsm: a differential test drives both with the same params,
// drawn at their edges, and the same events, every event including those a
// state ignores, and requires the same step (branch, target, effects in
// order), state, variables and verdicts after each one. The C machines are
// compiled in through cgo (the *_gen.go files, generated beside fsm/c);
// without cgo the package is empty, and gen's TestCCompiles and this
// package's TestFirmwareExample still compile the C with every C compiler
// installed.
package cfsm
