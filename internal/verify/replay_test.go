package verify

import (
	"strings"
	"testing"
)

// step is a model step of a hand-written run.
func step(from, event, to string, server int64, after map[string]int64) SimStep {
	return SimStep{Before: map[string]int64{}, After: after, From: from, Event: event, To: to, Vars: map[string]int64{"server": server}}
}

// lineRun is a counterexample of I9 as SPIN prints it: one server, silent,
// and all_failed starting a round when a call's request fails.
func lineRun() *Run {
	return &Run{
		Params: map[string]int64{"server_count": 1, "failback_enabled": 0, "contact_shared": 1},
		Steps: []SimStep{
			step("idle", "user.register", "registering", 0, map[string]int64{"server_count": 1}),
			step("registering", "timer.budget", "all_failed", 0, nil),
			step("all_failed", "request.unavailable", "registering", 0, nil),
		},
		Assume: -1, Cycle: -1,
		Violation: "I9: all_failed|failed to registering only on timer.backoff|user.register",
	}
}

func TestScenarioOfOnlyInvariant(t *testing.T) {
	got, err := Scenario(Result{Property: Property{Model: "line", ID: "safety"}, Counterexample: lineRun()})
	if err != nil {
		t.Fatal(err)
	}
	want := `# line/safety: the model checker's counterexample, replayed on the runtime.
# It fails where the runtime breaks the property, as the model did.
line servers=1 transport=udp auth=off t1=500ms retry_counts=3 failback=off failback_interval=60 failback_mode=duration failback_when=always deregister_backup=off
server primary silent
register
await user.register
expect state registering
await timer.budget
expect state all_failed
request-unavailable
advance 1s
expect only all_failed|failed registering timer.backoff|user.register
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// TestScenarioOfLeadsTo: the prefix to the obligation, then every server
// up and the goal expected.
func TestScenarioOfLeadsTo(t *testing.T) {
	prefix := &Run{
		Params: map[string]int64{"server_count": 1, "failback_enabled": 1, "contact_shared": 1},
		Steps: []SimStep{
			step("idle", "user.register", "registering", 0, map[string]int64{"server_count": 2}),
			step("registering", "transport.icmp", "retrying", 1, nil),
			step("retrying", "resp.2xx", "backup_registered", 1, nil),
			step("backup_registered", "timer.failback", "probing", 1, nil),
			step("probing", "timer.probe", "backup_registered", 1, nil),
		},
		Assume: -1, Cycle: -1,
	}
	r := Result{Property: Property{Model: "line", ID: "I1", LTL: true}, Counterexample: &Run{}, Prefix: prefix,
		Goal: []string{"primary_registered"}}
	got, err := Scenario(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"line servers=2 transport=udp auth=off t1=500ms retry_counts=3 failback=on ",
		"server primary icmp\nregister\nawait user.register\nexpect state registering\nawait transport.icmp\nexpect state retrying\nserver backup up\nawait resp.2xx\n",
		// The probe times out: the primary is silent from the failback on.
		"server primary silent\nawait timer.failback\nexpect state probing\nawait timer.probe\nexpect state backup_registered\n",
		"server primary up\nadvance 2h\nexpect state primary_registered\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the scenario lacks %q:\n%s", want, got)
		}
	}
}

// TestScenarioRefuses: what has no faithful scenario is refused with the
// step and the reason, never written half.
func TestScenarioRefuses(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(*Result)
		want   string
	}{
		{"holds", func(r *Result) { r.Holds = true }, "the property holds"},
		{"another model", func(r *Result) { r.Model = "request" }, "only the line model"},
		{"no prefix", func(r *Result) { r.LTL = true }, "no prefix"},
		{"an event without a step", func(r *Result) { r.Counterexample.Steps[1].Event = "dns.refreshed" },
			"step 2: dns.refreshed has no scenario step"},
		{"ICMP over TCP", func(r *Result) {
			r.Counterexample.Params["contact_shared"] = 0
			r.Counterexample.Steps[1].Event = "transport.icmp"
		}, "step 2 (registering --transport.icmp--> all_failed): transport.icmp does not come over TCP"},
		{"servers located again", func(r *Result) {
			r.Counterexample.Steps[2].After = map[string]int64{"server_count": 3}
		}, "step 3: the line locates 3 servers after 1"},
		{"a call up while failback waits for idle", func(r *Result) {
			r.Counterexample.Params["failback_when_idle"] = 1
			r.Counterexample.Steps[1].Before["calls_up"] = 1
		}, "step 2: a call is up while failback waits for idle"},
		{"servers by name", func(r *Result) { r.Counterexample.Params["failback_mode"] = 3 }, "failback_mode 3"},
		{"too many servers", func(r *Result) { r.Counterexample.Steps[0].After["server_count"] = 5 }, "server_count 5"},
		{"an always invariant", func(r *Result) { r.Counterexample.Violation = "I3: server < server_count" }, `"I3: server < server_count" has no scenario expectation`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := Result{Property: Property{Model: "line", ID: "safety"}, Counterexample: lineRun()}
			c.change(&r)
			got, err := Scenario(r)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %q, %v; want an error with %q", got, err, c.want)
			}
		})
	}
}
