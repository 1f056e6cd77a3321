package lab

import (
	"slices"
	"strings"
	"testing"
)

// TestPlanFile: a plan of one's own is read in order, with the names and
// the model's events each case plays.
func TestPlanFile(t *testing.T) {
	plan, err := ParsePlan("plan.yaml", []byte(`cases:
  - fault: 503
  - fault: kill
    trigger: timers
  - name: all down
    fault: freeze
    both: true
  - fault: slow
  - fault: drop
    trigger: call
  - fault: reset
    trigger: hangup
`), "tcp")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range plan {
		got = append(got, c.Name+" "+strings.Join(c.Events, ","))
	}
	want := []string{"503/timers resp.unavailable", "kill/timers transport.tcp,flow.lost", "all down timer.backoff", "slow/timers resp.2xx", "drop/call request.unavailable", "reset/hangup transport.closed"}
	if !slices.Equal(got, want) {
		t.Errorf("the plan:\n%q\nwant\n%q", got, want)
	}
	if !plan[2].Both || !plan[3].Stays {
		t.Errorf("both %v, stays %v", plan[2].Both, plan[3].Stays)
	}
}

// TestPlanFileErrors: every problem of a plan file is named with its
// file:line:col, all at once, and no plan comes back.
func TestPlanFileErrors(t *testing.T) {
	for _, c := range []struct {
		src  string
		want []string
	}{
		{"cases: []\n", []string{"plan.yaml:1:8: cases: a list of one case or more"}},
		{"steps:\n  - fault: kill\n", []string{"plan.yaml:1:1: unknown key \"steps\"", "plan.yaml:1:1: no cases"}},
		{"cases:\n  - fault: melt\n  - trigger: ring\n    fault: kill\n", []string{
			`plan.yaml:2:12: fault "melt": one of kill, freeze, 503, 503-retry-after, drop, slow, reset`,
			`plan.yaml:3:14: trigger "ring": timers, farcall, call or hangup`}},
		{"cases:\n  - trigger: call\n", []string{"plan.yaml:2:5: no fault"}},
		{"cases:\n  - fault: kill\n  - fault: kill\n", []string{`plan.yaml:3:5: case "kill/timers" again (first at line 2)`}},
		{"cases:\n  - fault: slow\n    trigger: call\n", []string{"plan.yaml:2:12: slow: a late answer within the budget is judged with trigger timers"}},
		{"cases:\n  - fault: reset\n    trigger: hangup\n", []string{"plan.yaml:2:12: reset: a TCP connection reset is judged with trigger hangup, one server at a time, over TCP"}},
		{"cases:\n  - fault: kill\n    both: yes please\n", []string{`plan.yaml:3:11: both "yes please": true or false`}},
		{"cases:\n  - fault: kill\n    colour: red\n", []string{`plan.yaml:3:5: unknown key "colour"`}},
		{"cases:\n  - [fault, kill]\n", []string{"plan.yaml:2:5: a case is a mapping"}},
		{"cases: [\n", []string{"plan.yaml: "}},
		{"", []string{"plan.yaml: empty"}},
	} {
		plan, err := ParsePlan("plan.yaml", []byte(c.src), "udp")
		if err == nil || plan != nil {
			t.Errorf("%q: plan %v, err %v; want an error and no plan", c.src, plan, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: %v\nwant %q in it", c.src, err, w)
			}
		}
	}
}
