package proptest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/sipfailover/sipfailover/fsm"
)

// TestBindingModel drives the generated binding machine (concurrent mode,
// R17) with random answers, failures and timer firings in virtual time:
// every step a transition the model allows, looplab/fsm in agreement, the
// budget armed that of the binding's server, B1's bound, and every branch
// of every transition taken.
func TestBindingModel(t *testing.T) {
	cov := coverage{}
	var ids []string
	for _, tr := range fsm.BindingTransitions {
		ids = append(ids, tr.ID)
	}
	runUntilCovered(t, cov, ids, func(t *rapid.T) {
		lp := drawLineParams(t)
		p := fsm.BindingParams{IsLast: rapid.Bool().Draw(t, "is_last"), CountMode: lp.CountMode, RetryCounts: lp.RetryCounts,
			RetryTime: lp.RetryTime, T1: lp.T1, T2: lp.T2, RefreshInterval: lp.RefreshInterval, KeepaliveEnabled: lp.KeepaliveEnabled,
			KeepaliveInterval: lp.KeepaliveInterval, FlowEnabled: lp.FlowEnabled, FlowInterval: lp.FlowInterval,
			BackoffBase: lp.BackoffBase, BackoffMax: lp.BackoffMax, FailbackEnabled: lp.FailbackEnabled, FailbackInterval: lp.FailbackInterval}
		m := fsm.NewBindingMachine(p, nil)
		w := newWheel[fsm.BindingTimer]()
		draw := func(max int) int { return rapid.IntRange(0, max).Draw(t, "jitter") }
		apply := func(effects []fsm.BindingEffect) {
			for _, e := range effects {
				e.Run(nil, w.armer(t, draw), w.cancel)
			}
		}
		effects, err := m.Start()
		if err != nil {
			t.Fatal(err)
		}
		apply(effects)
		var external []fsm.BindingEvent
		for _, e := range enumerate(fsm.ParseBindingEvent) {
			if !strings.HasPrefix(e.String(), "timer.") {
				external = append(external, e)
			}
		}
		waits := make([]leadsTo, len(fsm.BindingLeadsToInvariants))
		for i, inv := range fsm.BindingLeadsToInvariants {
			waits[i] = leadsTo{id: inv.ID, since: -1}
		}
		var trace []string
		step := func(ev fsm.BindingEvent) {
			st, err := m.Fire(ev)
			trace = append(trace, ev.String()+" -> "+m.State().String())
			if err != nil {
				t.Fatalf("Fire(%s) in %s: %v\ntrace: %s", ev, st.From, err, strings.Join(trace, "; "))
			}
			if !st.Ignored {
				cov[st.Transition]++
				if !fsm.BindingAllowed(st.From, st.To) {
					t.Fatalf("%s took %s to %s, which the model does not allow", ev, st.From, st.To)
				}
			}
			apply(st.Effects)
			for _, e := range st.Effects {
				if e.Kind == fsm.EffectArm && e.Timer == fsm.BindingTimerBudget && e.After != m.Budget() {
					t.Fatalf("%s armed budget %v, want %v\ntrace: %s", st.Transition, time.Duration(e.After), time.Duration(m.Budget()), strings.Join(trace, "; "))
				}
			}
			if err := m.CheckAlways(); err != nil {
				t.Fatalf("%v\ntrace: %s", err, strings.Join(trace, "; "))
			}
			for i, inv := range fsm.BindingLeadsToInvariants {
				if err := waits[i].follow(w.now, time.Duration(inv.Within(m)), slices.Contains(inv.From, m.State()),
					slices.Contains(inv.To, m.State()), strings.HasPrefix(ev.String(), "user.")); err != nil {
					t.Fatalf("%v\ntrace: %s", err, strings.Join(trace, "; "))
				}
			}
		}
		bindingHandled := func(state fsm.BindingState) []fsm.BindingEvent {
			return handled(fsm.BindingTransitions[:], func(t fsm.BindingTransition) ([]fsm.BindingState, []fsm.BindingEvent) { return t.From, t.On }, state)
		}
		t.Repeat(map[string]func(*rapid.T){
			"server says 2xx": func(t *rapid.T) { step(pickHandled(t, m.State(), bindingHandled, fsm.BindingEventResp2xx)) },
			"server challenges": func(t *rapid.T) {
				step(pickHandled(t, m.State(), bindingHandled, fsm.BindingEventRespChallenge))
			},
			"server asks again": func(t *rapid.T) {
				for range rapid.IntRange(1, 4).Draw(t, "times") {
					if !slices.Contains(bindingHandled(m.State()), fsm.BindingEventRespRetry) {
						break
					}
					step(fsm.BindingEventRespRetry)
				}
			},
			"any event": func(t *rapid.T) { step(rapid.SampledFrom(external).Draw(t, "event")) },
			"timer fires": func(t *rapid.T) {
				tm, ok := w.next()
				if !ok {
					t.Skip("no timer running")
				}
				w.fire(tm)
				step(tm.Event())
			},
			"": func(t *rapid.T) {
				if got := m.FSM().Current(); got != m.State().String() {
					t.Fatalf("looplab is in %s, the machine in %s", got, m.State())
				}
				for i, inv := range fsm.BindingLeadsToInvariants {
					if waits[i].since >= 0 && w.now-waits[i].since > time.Duration(inv.Within(m)) {
						t.Fatalf("%s: in %s since %v, now %v\ntrace: %s", inv.ID, m.State(), waits[i].since, w.now, strings.Join(trace, "; "))
					}
				}
			},
		})
	})
}

// TestConcurrentModel drives the line's machine in concurrent mode (R17)
// with the bindings' standing drawn at random before each event: every
// step a transition the model allows, C1, and the rules of R17: after a
// bindings.changed the line is on the highest-priority server up when its
// own went down (I2, with no REGISTER first), and it never moves up the
// list while failback is off or waits for a call to end (R13, R18).
func TestConcurrentModel(t *testing.T) {
	cov := coverage{}
	var ids []string
	for _, tr := range fsm.ConcurrentTransitions {
		ids = append(ids, tr.ID)
	}
	runUntilCovered(t, cov, ids, func(t *rapid.T) {
		n := rapid.IntRange(1, 8).Draw(t, "server_count")
		p := fsm.ConcurrentParams{ServerCount: n, BestUp: n, FailbackEnabled: rapid.Bool().Draw(t, "failback_enabled"),
			FailbackWhenIdle: rapid.Bool().Draw(t, "failback_when_idle")}
		m := fsm.NewConcurrentMachine(p, nil)
		if _, err := m.Start(); err != nil {
			t.Fatal(err)
		}
		var trace []string
		t.Repeat(map[string]func(*rapid.T){
			"bindings change": func(t *rapid.T) {
				p := m.Params()
				p.BestUp = rapid.IntRange(0, n).Draw(t, "best_up")
				p.AnyTrying = rapid.Bool().Draw(t, "any_trying")
				p.CallsUp = rapid.Bool().Draw(t, "calls_up")
				st := m.State()
				registered := st == fsm.ConcurrentStatePrimaryRegistered || st == fsm.ConcurrentStateBackupRegistered
				// The line's own binding can be up only if it is not above
				// the best one up.
				p.CurrentUp = registered && p.BestUp <= m.Vars().Server && rapid.Bool().Draw(t, "current_up")
				m.SetParams(p)
				ev := rapid.SampledFrom([]fsm.ConcurrentEvent{fsm.ConcurrentEventBindingsChanged, fsm.ConcurrentEventCallsEnded}).Draw(t, "event")
				before := m.Vars().Server
				s, err := m.Fire(ev)
				trace = append(trace, ev.String()+" -> "+m.State().String())
				if err != nil {
					t.Fatalf("Fire(%s): %v\ntrace: %s", ev, err, strings.Join(trace, "; "))
				}
				if !s.Ignored {
					cov[s.Transition]++
				}
				after := m.State()
				nowRegistered := after == fsm.ConcurrentStatePrimaryRegistered || after == fsm.ConcurrentStateBackupRegistered
				switch {
				case !registered || !nowRegistered || st == fsm.ConcurrentStateUnregistering:
				case !p.CurrentUp && p.BestUp < n && m.Vars().Server != p.BestUp:
					t.Fatalf("I2: the line's binding went down with server %d up, and the line is on %d\ntrace: %s", p.BestUp, m.Vars().Server, strings.Join(trace, "; "))
				case p.CurrentUp && m.Vars().Server < before && (!p.FailbackEnabled || (p.FailbackWhenIdle && p.CallsUp)):
					t.Fatalf("R13/R18: moved up from %d to %d with failback off or a call up\ntrace: %s", before, m.Vars().Server, strings.Join(trace, "; "))
				}
			},
			"user registers": func(t *rapid.T) {
				s, err := m.Fire(fsm.ConcurrentEventUserRegister)
				if err != nil {
					t.Fatal(err)
				}
				cov[s.Transition]++
			},
			"user unregisters": func(t *rapid.T) {
				if s, err := m.Fire(fsm.ConcurrentEventUserUnregister); err != nil {
					t.Fatal(err)
				} else if !s.Ignored {
					cov[s.Transition]++
				}
			},
			"every binding ended": func(t *rapid.T) {
				if s, err := m.Fire(fsm.ConcurrentEventBindingsIdle); err != nil {
					t.Fatal(err)
				} else if !s.Ignored {
					cov[s.Transition]++
				}
			},
			"": func(t *rapid.T) {
				if err := m.CheckAlways(); err != nil {
					t.Fatalf("%v\ntrace: %s", err, strings.Join(trace, "; "))
				}
				if got := m.FSM().Current(); got != m.State().String() {
					t.Fatalf("looplab is in %s, the machine in %s", got, m.State())
				}
			},
		})
	})
}
