package emit

import (
	"math"
	"testing"

	"github.com/sipfailover/sipfailover/fsm"
)

// TestDurationAsGenerated: the generator writes a param's bound with its
// own Duration.String into messages whose value fsm.Duration.String prints
// at run time ("999us is below the minimum 1ms"); the two must agree.
func TestDurationAsGenerated(t *testing.T) {
	for _, v := range []int64{0, 1, 999, 1000, 1500, 999_000, 1_000_000, 1_500_000_000, 1_000_000_000, 60e9, 90e9, 3600e9, 86400e9, -5e9, math.MaxInt64} {
		if got, want := Duration(v).String(), fsm.Duration(v).String(); got != want {
			t.Errorf("%d: the generator writes %q, the generated code prints %q", v, got, want)
		}
	}
}
