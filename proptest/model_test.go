package proptest

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/sipfailover/sipfailover/fsm"
)

func ms(t *rapid.T, label string, lo, hi int) fsm.Duration {
	return fsm.Duration(time.Duration(rapid.IntRange(lo, hi).Draw(t, label)) * time.Millisecond)
}

// drawLineParams draws settings within the bounds docs/requirements.md allows.
func drawLineParams(t *rapid.T) fsm.LineParams {
	t1 := ms(t, "t1_ms", 1, 500)
	p := fsm.LineParams{
		ServerCount:             rapid.IntRange(1, 4).Draw(t, "server_count"),
		RegistrarCount:          1,
		FailbackEnabled:         rapid.Bool().Draw(t, "failback_enabled"),
		FailbackInterval:        ms(t, "failback_interval_ms", 1000, 1800_000),
		CountMode:               rapid.Bool().Draw(t, "count_mode"),
		RetryCounts:             rapid.IntRange(1, 10).Draw(t, "retry_counts"),
		RetryTime:               ms(t, "retry_time_ms", 1, 32_000),
		T1:                      t1,
		T2:                      8 * t1,
		RefreshInterval:         ms(t, "refresh_interval_ms", 1, 3600_000),
		KeepaliveEnabled:        rapid.Bool().Draw(t, "keepalive_enabled"),
		KeepaliveInterval:       ms(t, "keepalive_interval_ms", 1, 120_000),
		FlowEnabled:             rapid.Bool().Draw(t, "flow_enabled"),
		FlowInterval:            ms(t, "flow_interval_ms", 1000, 120_000),
		BackoffBase:             ms(t, "backoff_base_ms", 1, 60_000),
		BackoffMax:              ms(t, "backoff_max_ms", 60_000, 1800_000),
		DeregisterAfterFailback: rapid.Bool().Draw(t, "deregister_after_failback"),
		ContactShared:           rapid.Bool().Draw(t, "contact_shared"),
		FailbackMode:            rapid.IntRange(0, 3).Draw(t, "failback_mode"),
		FailbackWhenIdle:        rapid.Bool().Draw(t, "failback_when_idle"),
	}
	// Behind outbound proxies, the registrars behind them (R22).
	if p.Proxied = rapid.Bool().Draw(t, "proxied"); p.Proxied {
		p.RegistrarCount = rapid.IntRange(1, 4).Draw(t, "registrar_count")
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("drew invalid params: %v", err)
	}
	return p
}

// enumerate lists the values of a generated enum, from 1 while they parse back.
func enumerate[T ~uint8](parse func(string) (T, error)) []T {
	var out []T
	for v := T(1); ; v++ {
		s := any(v).(interface{ String() string }).String()
		if back, err := parse(s); err != nil || back != v {
			return out
		}
		out = append(out, v)
	}
}

// coverage counts the branches taken, across every check of a test.
type coverage map[string]int

// report lists how often each branch was taken, one a line.
func (c coverage) report(ids []string) string {
	var b strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&b, "  %-28s %d\n", id, c[id])
	}
	return b.String()
}

// missing lists the branch ids never taken.
func (c coverage) missing(ids []string) []string {
	var out []string
	for _, id := range ids {
		if c[id] == 0 {
			out = append(out, id)
		}
	}
	return out
}

// judgeCoverage reports whether this run explores freely with the default
// settings, so that a coverage shortfall is a finding, not a small sample
// or a replay.
func judgeCoverage() bool {
	if testing.Short() {
		return false
	}
	given := false
	flag.Visit(func(f *flag.Flag) {
		given = given || f.Name == "rapid.checks" || f.Name == "rapid.seed" || f.Name == "rapid.failfile"
	})
	return !given
}

// leadsTo tracks bounded liveness: since is when the machine last entered a
// From state without having reached a To state; -1 when not waiting.
type leadsTo struct {
	id    string
	since time.Duration
}

// follow updates the wait after a step: its premise holds while the
// machine is in a from state and not in a to state; restart begins the
// wait again. It returns an error when the wait had already lasted past
// bound when the step came, as when a timer ends a state too late.
func (l *leadsTo) follow(now, bound time.Duration, in, reached, restart bool) error {
	var err error
	if l.since >= 0 && now-l.since > bound {
		err = fmt.Errorf("%s: its premise held from %v until %v, past its bound %v", l.id, l.since, now, bound)
	}
	switch {
	case reached || !in:
		l.since = -1
	case l.since < 0 || restart:
		l.since = now
	}
	return err
}

// TestLineModel drives the generated line machine with random events and
// timer firings in virtual time (I9 for the model: only allowed transitions;
// I3, I7 and L1 through CheckAlways; I6 as bounded leads-to).
func TestLineModel(t *testing.T) {
	cov := coverage{}
	var ids []string
	for _, tr := range fsm.LineTransitions {
		ids = append(ids, tr.ID)
	}
	runUntilCovered(t, cov, ids, func(t *rapid.T) {
		p := drawLineParams(t)
		m := fsm.NewLineMachine(p, nil)
		w := newWheel[fsm.LineTimer]()
		draw := func(max int) int { return rapid.IntRange(0, max).Draw(t, "jitter") }
		apply := func(effects []fsm.LineEffect) {
			for _, e := range effects {
				e.Run(nil, w.armer(t, draw), w.cancel)
			}
		}
		effects, err := m.Start()
		if err != nil {
			t.Fatal(err)
		}
		apply(effects)
		events := enumerate(fsm.ParseLineEvent)
		var external []fsm.LineEvent
		for _, e := range events {
			if !strings.HasPrefix(e.String(), "timer.") {
				external = append(external, e)
			}
		}
		waits := make([]leadsTo, len(fsm.LineLeadsToInvariants))
		for i, inv := range fsm.LineLeadsToInvariants {
			waits[i] = leadsTo{id: inv.ID, since: -1}
		}
		var trace []string
		step := func(ev fsm.LineEvent) {
			st, err := m.Fire(ev)
			trace = append(trace, ev.String()+" -> "+m.State().String())
			if err != nil {
				t.Fatalf("Fire(%s) in %s: %v\ntrace: %s", ev, st.From, err, strings.Join(trace, "; "))
			}
			if !st.Ignored {
				cov[st.Transition]++
				if !fsm.LineAllowed(st.From, st.To) {
					t.Fatalf("%s took %s to %s, which the model does not allow", ev, st.From, st.To)
				}
			}
			apply(st.Effects)
			// R3, R4: a budget is armed for the server the line now targets.
			for _, e := range st.Effects {
				if e.Kind == fsm.EffectArm && e.Timer == fsm.LineTimerBudget && e.After != m.Budget() {
					t.Fatalf("%s armed budget %v, but the budget of server %d is %v\ntrace: %s", st.Transition, time.Duration(e.After), m.Vars().Server, time.Duration(m.Budget()), strings.Join(trace, "; "))
				}
			}
			for i, inv := range fsm.LineLeadsToInvariants {
				if inv.Assumes != "" || !inv.When(m) {
					continue // the runtime suite, which controls the servers, checks it
				}
				// A user action starts the wait again: the bound is for the
				// machine left to itself.
				if err := waits[i].follow(w.now, time.Duration(inv.Within(m)), slices.Contains(inv.From, m.State()),
					slices.Contains(inv.To, m.State()), strings.HasPrefix(ev.String(), "user.")); err != nil {
					t.Fatalf("%v\ntrace: %s", err, strings.Join(trace, "; "))
				}
			}
		}
		t.Repeat(map[string]func(*rapid.T){
			// Servers answer 2xx far more often than they fail in any one way,
			// and digest registrars challenge routinely.
			"server says 2xx": func(t *rapid.T) {
				step(pickHandled(t, m.State(), lineHandled, fsm.LineEventResp2xx, fsm.LineEventProbe2xx))
			},
			"server challenges": func(t *rapid.T) {
				step(pickHandled(t, m.State(), lineHandled, fsm.LineEventRespChallenge, fsm.LineEventProbeChallenge))
			},
			// A server that rejects the credentials challenges the answer too.
			"server rejects credentials": func(t *rapid.T) {
				ev := pickHandled(t, m.State(), lineHandled, fsm.LineEventRespChallenge, fsm.LineEventProbeChallenge)
				step(ev)
				if slices.Contains(lineHandled(m.State()), ev) {
					step(ev)
				}
			},
			// A server that asks for the REGISTER again (423, a stale nonce)
			// may do so again and again.
			"server asks again": func(t *rapid.T) {
				ev := pickHandled(t, m.State(), lineHandled, fsm.LineEventRespRetry, fsm.LineEventProbeRetry)
				for range rapid.IntRange(1, 3).Draw(t, "times") + rapid.IntRange(0, 1).Draw(t, "once more") {
					if !slices.Contains(lineHandled(m.State()), ev) {
						break
					}
					step(ev)
				}
			},
			// A call comes up while the probe is out, and then the primary
			// answers: with failback_when idle the line stays where it is
			// (failback/1), a branch a walk reaches only by chance.
			"a call during the probe": func(t *rapid.T) {
				if m.State() != fsm.LineStateProbing {
					t.Skip("no probe in flight")
				}
				p := m.Params()
				p.CallsUp = true
				m.SetParams(p)
				step(fsm.LineEventProbe2xx)
			},
			// The user starts a request while the line is on a backup: in
			// failback mode new_requests it probes first (request_due/1).
			"a new request on a backup": func(t *rapid.T) {
				if m.State() != fsm.LineStateBackupRegistered {
					t.Skip("not on a backup")
				}
				step(fsm.LineEventRequestNew)
			},
			// The primary asks for the probe again past the retries allowed
			// (probe_asked_again/2).
			"the primary asks again and again": func(t *rapid.T) {
				for range 3 {
					if m.State() != fsm.LineStateProbing {
						t.Skip("no probe in flight")
					}
					step(fsm.LineEventProbeRetry)
				}
			},
			"handled event": func(t *rapid.T) {
				var handled []fsm.LineEvent
				for _, on := range lineHandled(m.State()) {
					if !strings.HasPrefix(on.String(), "timer.") {
						handled = append(handled, on)
					}
				}
				if len(handled) == 0 {
					t.Skip("no external event is handled here")
				}
				step(rapid.SampledFrom(handled).Draw(t, "event"))
			},
			"any event": func(t *rapid.T) {
				step(rapid.SampledFrom(external).Draw(t, "event"))
			},
			// A stretch of the line's life: handled events and timers, so that
			// walks reach deep stories (failover, probe, failback) in few steps.
			"wander": func(t *rapid.T) {
				for range rapid.IntRange(1, 20).Draw(t, "steps") {
					if rapid.IntRange(0, 9).Draw(t, "call") == 0 { // a call comes up or ends (R18)
						p := m.Params()
						p.CallsUp = !p.CallsUp
						m.SetParams(p)
						if !p.CallsUp {
							step(fsm.LineEventCallsEnded)
						}
						continue
					}
					if tm, ok := w.next(); ok && rapid.Bool().Draw(t, "timer") {
						w.fire(tm)
						step(tm.Event())
						continue
					}
					var handled, ok []fsm.LineEvent
					for _, on := range lineHandled(m.State()) {
						switch {
						case on == fsm.LineEventResp2xx || on == fsm.LineEventProbe2xx:
							ok = append(ok, on)
						case !strings.HasPrefix(on.String(), "timer."):
							handled = append(handled, on)
						}
					}
					// Servers mostly say yes: a 2xx half the time it can come.
					if len(ok) > 0 && (len(handled) == 0 || rapid.Bool().Draw(t, "ok")) {
						handled = ok
					}
					step(rapid.SampledFrom(handled).Draw(t, "event"))
				}
			},
			"timer fires": func(t *rapid.T) {
				tm, ok := w.next()
				if !ok {
					t.Skip("no timer running")
				}
				w.fire(tm)
				step(tm.Event())
			},
			// The primary's records are looked up again while a call is up,
			// which holds a dns_ttl failback back (R18).
			"records expire during a call": func(t *rapid.T) {
				p := m.Params()
				p.CallsUp = true
				m.SetParams(p)
				step(fsm.LineEventDnsRefreshed)
			},
			// A call of the line gets a dialog, or the last one ends (R18).
			"calls change": func(t *rapid.T) {
				p := m.Params()
				p.CallsUp = !p.CallsUp
				m.SetParams(p)
				if !p.CallsUp {
					step(fsm.LineEventCallsEnded)
				}
			},
			"": func(t *rapid.T) {
				if err := m.CheckAlways(); err != nil {
					t.Fatalf("%v\ntrace: %s", err, strings.Join(trace, "; "))
				}
				if got := m.FSM().Current(); got != m.State().String() {
					t.Fatalf("looplab is in %s, the machine in %s", got, m.State())
				}
				for i, inv := range fsm.LineLeadsToInvariants {
					if waits[i].since >= 0 && w.now-waits[i].since > time.Duration(inv.Within(m)) {
						t.Fatalf("%s: in %s since %v, now %v, bound %v\ntrace: %s", inv.ID, m.State(), waits[i].since, w.now, time.Duration(inv.Within(m)), strings.Join(trace, "; "))
					}
				}
			},
		})
	})
}

// coverageRounds bounds the rounds of rapid checks run to take every branch.
// Rounds stop as soon as every branch is taken, so the bound costs time
// only when a branch is rare; a branch taken once in eight rounds on
// average is missed by 20 rounds one time in 14, by 50 once in 800.
const coverageRounds = 50

// runUntilCovered runs prop in rounds of rapid checks until every branch in
// ids has been taken, and fails if some branch is still never taken after
// coverageRounds rounds (I9: every transition of the model is exercised).
// Under -short, or with -rapid.checks or -rapid.seed given, it runs one round
// and does not judge coverage.
func runUntilCovered(t *testing.T, cov coverage, ids []string, prop func(*rapid.T)) {
	t.Helper()
	rounds := coverageRounds
	if !judgeCoverage() {
		rounds = 1
	}
	for round := 0; round < rounds; round++ {
		rapid.Check(t, prop)
		if t.Failed() {
			return
		}
		if len(cov.missing(ids)) == 0 {
			t.Logf("every branch taken in %d round(s) of checks:\n%s", round+1, cov.report(ids))
			return
		}
	}
	if judgeCoverage() {
		t.Errorf("branches never taken in %d rounds of checks: %v (taken: %v)", rounds, cov.missing(ids), map[string]int(cov))
	}
}

// pickHandled draws one of events that the table says state handles, or
// skips the action.
func pickHandled[S, E comparable](t *rapid.T, state S, handled func(S) []E, events ...E) E {
	var ok []E
	for _, e := range handled(state) {
		if slices.Contains(events, e) {
			ok = append(ok, e)
		}
	}
	if len(ok) == 0 {
		t.Skip("none of", events, "is handled in", state)
	}
	return rapid.SampledFrom(ok).Draw(t, "answer")
}

// handled lists the events that some row of a generated transition table
// takes in state; row returns a row's From and On.
func handled[S, E comparable, R any](table []R, row func(R) ([]S, []E), state S) []E {
	var out []E
	for _, r := range table {
		from, on := row(r)
		if !slices.Contains(from, state) {
			continue
		}
		for _, e := range on {
			if !slices.Contains(out, e) {
				out = append(out, e)
			}
		}
	}
	return out
}

func lineHandled(state fsm.LineState) []fsm.LineEvent {
	return handled(fsm.LineTransitions[:], func(t fsm.LineTransition) ([]fsm.LineState, []fsm.LineEvent) { return t.From, t.On }, state)
}

// TestCheckAlwaysCanFail feeds the line machine states that break its
// invariants, so that the check above is shown not to be vacuous.
func TestCheckAlwaysCanFail(t *testing.T) {
	p := fsm.LineParams{ServerCount: 2, RegistrarCount: 1, T1: fsm.Duration(time.Millisecond), T2: fsm.Duration(4 * time.Millisecond),
		FailbackEnabled: true, FailbackInterval: fsm.Duration(time.Second), RetryCounts: 3, CountMode: true,
		RetryTime: 1, RefreshInterval: 1, KeepaliveInterval: 1, BackoffBase: 1, BackoffMax: 1}
	m := fsm.NewLineMachine(p, nil)
	if _, err := m.Start(); err != nil {
		t.Fatal(err)
	}
	for _, ev := range []fsm.LineEvent{fsm.LineEventUserRegister, fsm.LineEventTimerBudget, fsm.LineEventResp2xx, fsm.LineEventTimerFailback} {
		if _, err := m.Fire(ev); err != nil {
			t.Fatalf("%s: %v", ev, err)
		}
	}
	if m.State() != fsm.LineStateProbing {
		t.Fatalf("in %s, want probing", m.State())
	}
	if err := m.CheckAlways(); err != nil {
		t.Fatalf("a good state fails: %v", err)
	}
	// Failback switched off under a probe breaks I7; one server breaks I3.
	bad := p
	bad.FailbackEnabled = false
	bad.ServerCount = 1
	m.SetParams(bad)
	err := m.CheckAlways()
	var ids []string
	for _, e := range unjoin(err) {
		var ie *fsm.InvariantError
		if errors.As(e, &ie) {
			ids = append(ids, ie.ID)
		}
	}
	if !slices.Equal(ids, []string{"I3", "I7"}) {
		t.Fatalf("violations %v, want [I3 I7]: %v", ids, err)
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}
