package verify

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// The line model's events as the runtime's scenario scripts
// (runtime/testdata/*.txt) cause them: what a step does, or what the
// server that gets the request must do for the event to come back.
var (
	// userSteps are the events a script step causes at once.
	userSteps = map[string]string{
		"user.register":       "register",
		"user.unregister":     "unregister",
		"request.unavailable": "request-unavailable",
		"request.new":         "send MESSAGE sip:1002@example.test",
	}
	// registerAnswers are the answers to the line's REGISTER as the mode
	// of the server it went to; "" means any transport.
	registerAnswers = map[string]string{
		"resp.2xx":         "up",
		"resp.unavailable": "answer 503",
		"resp.rejected":    "answer 403",
		"transport.icmp":   "icmp",
		"transport.tcp":    "refused",
		"timer.budget":     "silent",
	}
	// probeAnswers are the answers to the failback probe, as the primary's mode.
	probeAnswers = map[string]string{
		"probe.2xx":    "up",
		"probe.failed": "answer 503",
		"timer.probe":  "silent",
	}
	// timers fire by themselves; a script waits for them.
	timers = []string{"timer.refresh", "timer.keepalive", "timer.failback", "timer.backoff"}
)

var serverNames = []string{"primary", "backup", "s3", "s4"}

// Scenario writes the counterexample of a violated property of the line
// model as a scenario script for the runtime (runtime/testdata/*.txt):
// the settings its params stand for, each event as the step or the
// server's answer that causes it on the wire, each transition awaited in
// virtual time and its state expected, and at the end the property itself
// as an expectation. On the runtime built from the model that broke the
// property the script fails at that expectation; on a model that keeps the
// property it passes, so a bug the model checker finds becomes a failing
// test.
//
// A leads-to invariant replays its shortest prefix (Result.Prefix), then
// every server up and no call, as the invariant assumes, and expects its
// goal within two hours of virtual time: the bound itself is the property
// suite's to check.
func Scenario(r Result) (string, error) {
	if r.Holds || r.Counterexample == nil {
		return "", errors.New("the property holds: nothing to replay")
	}
	if r.Model != "line" {
		return "", fmt.Errorf("only the line model replays on the runtime; %s runs inside a line", r.Model)
	}
	run := r.Counterexample
	if r.LTL {
		if r.Prefix == nil {
			return "", errors.New("no prefix to replay")
		}
		run = r.Prefix
	}
	params, err := lineParams(run)
	if err != nil {
		return "", err
	}
	w := &script{modes: map[string]string{}}
	w.p("# %s: the model checker's counterexample, replayed on the runtime.", r.Property)
	w.p("# It fails where the runtime breaks the property, as the model did.")
	settings, err := lineSettings(params)
	if err != nil {
		return "", err
	}
	w.p("line %s", settings)
	last := len(run.Steps) - 1
	for i, st := range run.Steps {
		if err := w.answers(run, i, params["contact_shared"] == 1); err != nil {
			return "", err
		}
		switch cmd, user := userSteps[st.Event]; {
		case user:
			w.p("%s", cmd)
		case st.Event == "calls.ended":
			// A call through the server the line is on, ended by the user.
			w.p("dial sip:1002@example.test")
			w.p("advance 1s")
			w.p("hangup")
		case registerAnswers[st.Event] != "", probeAnswers[st.Event] != "", st.Event == "keepalive.failed", slices.Contains(timers, st.Event):
		default:
			return "", fmt.Errorf("step %d: %s has no scenario step: the counterexample is given as model steps only", i+1, st.Event)
		}
		if i == last && !r.LTL {
			// The violation: a model that keeps the property may not take
			// this transition at all.
			if _, user := userSteps[st.Event]; user || st.Event == "calls.ended" {
				w.p("advance 1s")
			} else {
				w.p("await %s", st.Event)
			}
			break
		}
		w.p("await %s", st.Event)
		w.p("expect state %s", st.To)
	}
	switch {
	case r.LTL:
		w.p("# From here on the servers behave as %s assumes: every one up.", r.ID)
		for k := range params["server_count"] {
			w.mode(k, "up")
		}
		w.p("advance 2h")
		w.p("expect state %s", strings.Join(r.Goal, "|"))
	default:
		exp, err := expectation(run.Violation)
		if err != nil {
			return "", err
		}
		w.p("%s", exp)
	}
	return w.String(), nil
}

// expectation is a safety violation of the line model as a scenario's
// expectation.
func expectation(violation string) (string, error) {
	id, text, _ := strings.Cut(violation, ": ")
	// An only invariant: "I9: all_failed|failed to registering only on timer.backoff|user.register".
	var from, to, on string
	if n, _ := fmt.Sscanf(text, "%s to %s only on %s", &from, &to, &on); n == 3 {
		return fmt.Sprintf("expect only %s %s %s", from, to, on), nil
	}
	if id == "send_probe" && strings.Contains(text, "while one is unanswered") {
		return "expect serial primary REGISTER 32s", nil // 64*T1 of t1=500ms
	}
	return "", fmt.Errorf("%q has no scenario expectation: the counterexample is given as model steps only", violation)
}

// lineParams are the params the run settles on once the line has located
// its servers; a scenario's line keeps one list.
func lineParams(run *Run) (map[string]int64, error) {
	params := maps.Clone(run.Params)
	located := false
	for i, st := range run.Steps {
		maps.Copy(params, st.Before)
		if n, ok := st.After["server_count"]; ok && located && n != params["server_count"] {
			return nil, fmt.Errorf("step %d: the line locates %d servers after %d; a scenario keeps one list", i+1, n, params["server_count"])
		}
		maps.Copy(params, st.After)
		located = located || st.Event == "user.register"
		if params["calls_up"] == 1 && params["failback_when_idle"] == 1 {
			return nil, fmt.Errorf("step %d: a call is up while failback waits for idle; a scenario places no call for it", i+1)
		}
	}
	return params, nil
}

// lineSettings are a scenario's line settings for the model's params.
func lineSettings(p map[string]int64) (string, error) {
	mode := []string{"duration", "registration", "new_requests", "dns_ttl"}
	if p["failback_mode"] < 0 || int(p["failback_mode"]) >= len(mode) || mode[p["failback_mode"]] == "dns_ttl" {
		return "", fmt.Errorf("failback_mode %d: a scenario's servers are given by address", p["failback_mode"])
	}
	n := max(p["server_count"], 1)
	if int(n) > len(serverNames) {
		return "", fmt.Errorf("server_count %d: a scenario has at most %d servers", n, len(serverNames))
	}
	onoff := map[bool]string{true: "on", false: "off"}
	transport := map[bool]string{true: "udp", false: "tcp"}[p["contact_shared"] == 1]
	s := fmt.Sprintf("servers=%d transport=%s auth=off t1=500ms retry_counts=3 failback=%s failback_interval=60 failback_mode=%s failback_when=%s deregister_backup=%s",
		n, transport, onoff[p["failback_enabled"] == 1], mode[p["failback_mode"]],
		map[bool]string{true: "idle", false: "always"}[p["failback_when_idle"] == 1], onoff[p["deregister_after_failback"] == 1])
	if p["keepalive_enabled"] == 1 {
		s += " keepalive=30s"
	}
	if p["proxied"] == 1 {
		// The servers are outbound proxies in front of the registrars (R22).
		s += fmt.Sprintf(" proxies=on registrars=%d", max(p["registrar_count"], 1))
	}
	return s, nil
}

// script is a scenario being written, with each server's mode so far.
type script struct {
	b     strings.Builder
	modes map[string]string
}

func (w *script) p(format string, args ...any) { fmt.Fprintf(&w.b, format+"\n", args...) }

func (w *script) String() string { return w.b.String() }

// mode sets server k's mode, if it changes.
func (w *script) mode(k int64, mode string) {
	name := serverNames[k]
	if w.modes[name] != mode {
		w.modes[name] = mode
		w.p("server %s %s", name, mode)
	}
}

// answers sets, before step i, the mode of each server that the run's
// next answer to a request of the line needs: the REGISTER's server, the
// current server for the keep-alive, and, from the step that enters
// probing, the primary for the probe; a probe still unanswered when the
// run ends goes to a silent primary.
func (w *script) answers(run *Run, i int, udp bool) error {
	want := map[int64]string{}
	where := func(j int) string {
		st := run.Steps[j]
		return fmt.Sprintf("step %d (%s --%s--> %s)", j+1, st.From, st.Event, st.To)
	}
	need := func(j int, k int64, mode string) error {
		if prev, ok := want[k]; ok && prev != mode {
			return fmt.Errorf("%s needs %s %s while another request needs it %s", where(j), serverNames[k], mode, prev)
		}
		want[k] = mode
		return nil
	}
	server := func(j int) int64 {
		if j == 0 {
			return 0
		}
		return run.Steps[j-1].Vars["server"]
	}
	next := func(answers func(event string) bool) int {
		for j := i; j < len(run.Steps); j++ {
			if answers(run.Steps[j].Event) {
				return j
			}
		}
		return -1
	}
	in := func(m map[string]string) func(string) bool { return func(ev string) bool { return m[ev] != "" } }
	if j := next(in(registerAnswers)); j >= 0 {
		ev := run.Steps[j].Event
		if ev == "transport.icmp" && !udp || ev == "transport.tcp" && udp {
			return fmt.Errorf("%s: %s does not come over %s", where(j), ev, map[bool]string{true: "UDP", false: "TCP"}[udp])
		}
		if err := need(j, server(j), registerAnswers[ev]); err != nil {
			return err
		}
	}
	if j := next(func(ev string) bool { return ev == "keepalive.failed" }); j >= 0 {
		if err := need(j, server(j), "silent"); err != nil {
			return err
		}
	}
	if run.Steps[i].To == "probing" {
		switch j := next(in(probeAnswers)); {
		case j >= 0:
			if err := need(j, 0, probeAnswers[run.Steps[j].Event]); err != nil {
				return err
			}
		case run.Steps[len(run.Steps)-1].To == "probing":
			if err := need(len(run.Steps)-1, 0, "silent"); err != nil {
				return err
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if int(k) >= len(serverNames) {
			return fmt.Errorf("server %d: a scenario has at most %d servers", k, len(serverNames))
		}
		w.mode(k, want[k])
	}
	return nil
}
