package proptest

import (
	"fmt"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// TestConcurrentInvariants drives the real runtime with lines in
// concurrent registration mode (R17) over the simulated network, with the
// same random steps as TestRuntimeInvariants (faults, recoveries, calls,
// messages, time), and checks after every step what CheckConcurrent
// judges: new requests only to servers that hold a binding of the line,
// a binding on every server up long enough, failback to the primary, and
// I4 and I11. Every branch of model/concurrent.yaml must be taken.
func TestConcurrentInvariants(t *testing.T) {
	cov := coverage{}
	// moved/5, staying put, changes nothing the watcher hears of; changed/3
	// needs a binding to come up and go down within one instant, or a call
	// to end while every binding is down and one retries: TestConcurrentModel
	// takes both.
	ids := []string{"register", "changed/1", "changed/2", "changed/4", "moved/1", "moved/2", "moved/3", "moved/4",
		"unregister", "unregistered"}
	runUntilCovered(t, cov, ids, func(t *rapid.T) {
		w := newWorldIn(t, cov, "concurrent")
		w.do("register")
		w.line.Register()
		w.trace.Users = append(w.trace.Users, 0)
		actions := runtimeActions(w)
		actions[""] = func(t *rapid.T) { w.checkConcurrent(t) }
		t.Repeat(actions)
	})
}

// checkConcurrent is check for a concurrent line.
func (w *world) checkConcurrent(t *rapid.T) {
	w.collect()
	if v := CheckConcurrent(&w.trace); len(v) > 0 {
		var b strings.Builder
		for _, x := range v {
			fmt.Fprintf(&b, "  %s\n", x)
		}
		t.Fatalf("invariants broken:\n%s\nthe run as a scenario (paste into runtime/testdata/NAME.txt):\n\n%s\n", b.String(), strings.Join(w.script, "\n"))
	}
}
