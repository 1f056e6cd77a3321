package verify

import (
	"os"
	"slices"
	"testing"
)

// TestFixesOfAnInvariant: the prefix of a leads-to counterexample is
// searched under the params its invariant holds (I1's and I6's hold the
// flow keep-alive off, which the safety run never does): read from the
// generated Promela, for that invariant alone.
func TestFixesOfAnInvariant(t *testing.T) {
	src, err := os.ReadFile("../../verify/line.pml")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"I1", "I6"} {
		got := fixes(src, id)
		if !slices.Contains(got, "#define FIX_flow_enabled 0") || !slices.Contains(got, "#define FIX_calls_up 0") || len(got) != 2 {
			t.Errorf("%s holds %q, want calls_up and flow_enabled at 0", id, got)
		}
	}
	if got := fixes(src, "I7"); len(got) != 0 {
		t.Errorf("I7, no leads-to invariant, holds %q", got)
	}
}
