package lab

import (
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/internal/capture"
)

// TestJUnitCountsWhatHappened: a case held, one violated, one not run, and
// the invariants held, violated and not decidable come out as the JUnit
// report CI reads: two failures, two skipped, the failure's words kept.
func TestJUnitCountsWhatHappened(t *testing.T) {
	rep := &Report{
		Results: []Result{
			{Case: Case{Name: "503/timers"}, Verdict: Held, From: 0, To: 4 * time.Second},
			{Case: Case{Name: "kill/timers"}, Verdict: Violated, Why: "a registration on the backup did not come within 6.88s of the fault", From: 4 * time.Second, To: 12 * time.Second,
				Findings: []capture.Finding{{At: 5 * time.Second, Frames: []int{7}, Msg: "server 1 was unavailable"}}},
			{Case: Case{Name: "503/call"}, Verdict: NotRun, Why: "not run (no -dial and -hangup)"},
		},
		Capture: capture.Report{Verdicts: []capture.Verdict{
			{ID: "I1", Title: "fails back", Status: capture.Held},
			{ID: "I2", Title: "fails over", Status: capture.Violated, Why: "1 of 2", Findings: []capture.Finding{{At: 5 * time.Second, Msg: "server 1 was unavailable"}}},
			{ID: "I5", Title: "registered", Status: capture.Undecidable, Why: "no INVITE"},
		}},
	}
	var b strings.Builder
	if err := rep.WriteJUnit(&b); err != nil {
		t.Fatal(err)
	}
	var s junitSuite
	if err := xml.Unmarshal([]byte(b.String()), &s); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if s.Tests != 6 || s.Failures != 2 || s.Skipped != 2 || s.Time != "12.000" {
		t.Errorf("tests %d failures %d skipped %d time %s; want 6, 2, 2, 12.000\n%s", s.Tests, s.Failures, s.Skipped, s.Time, b.String())
	}
	if f := s.Cases[1].Failure; f == nil || !strings.Contains(f.Message, "6.88s") || !strings.Contains(f.Text, "frames [7]") {
		t.Errorf("the violated case's failure: %+v", f)
	}
}
