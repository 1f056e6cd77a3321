package proptest

import (
	"fmt"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/sipfailover/sipfailover/internal/invariant"
	"github.com/sipfailover/sipfailover/runtime/runtimetest"
)

// TestConcurrentInvariants drives the real runtime with lines in
// concurrent registration mode (R17) over the simulated network, with the
// same random steps as TestRuntimeInvariants (faults, recoveries, calls,
// messages, time), and checks after every step what invariant.CheckConcurrent
// judges: new requests only to servers that hold a binding of the line,
// a binding on every server up long enough, failback to the primary, and
// I4 and I11. Every branch of model/concurrent.yaml must be taken.
func TestConcurrentInvariants(t *testing.T) {
	cov := coverage{}
	// moved/5, staying put, changes nothing the watcher hears of:
	// TestConcurrentModel takes it.
	ids := []string{"register", "changed/1", "changed/2", "changed/3", "changed/4", "moved/1", "moved/2", "moved/3", "moved/4",
		"unregister", "unregistered"}
	runUntilCovered(t, cov, ids, func(t *rapid.T) {
		w := newWorldIn(t, cov, "concurrent")
		if rapid.IntRange(0, 3).Draw(t, "start_down") == 0 {
			// Every server down from the start: each binding fails and
			// none is left trying, so the line is all-failed (changed/4),
			// a state the faults drawn later reach only now and then.
			mode, word := runtimetest.SimICMP, "icmp"
			if w.trace.Reliable {
				mode, word = runtimetest.SimRefused, "refused"
			}
			for i := range w.eps {
				w.setServer(i, []string{word}, func(s *runtimetest.SimServer) { s.Mode = mode })
			}
		}
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
	if v := invariant.CheckConcurrent(&w.trace); len(v) > 0 {
		var b strings.Builder
		for _, x := range v {
			fmt.Fprintf(&b, "  %s\n", x)
		}
		t.Fatalf("invariants broken:\n%s\nthe run as a scenario (paste into runtime/testdata/NAME.txt):\n\n%s\n", b.String(), strings.Join(w.script, "\n"))
	}
}
