package proptest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/sipfailover/sipfailover/fsm"
)

func callHandled(state fsm.CallState) []fsm.CallEvent {
	return handled(fsm.CallTransitions[:], func(t fsm.CallTransition) ([]fsm.CallState, []fsm.CallEvent) { return t.From, t.On }, state)
}

// TestCallModel drives one call after another through the generated call
// machine with the events of its INVITE, its BYE, the far end and the user
// in random order: every step must be a transition the model allows,
// looplab/fsm must agree, the leads-to bound of I6 must hold, a BYE must
// never go out before the ACK of our 200 OK (RFC 3261 section 15), and
// every branch of every transition must be taken.
func TestCallModel(t *testing.T) {
	cov := coverage{}
	var ids []string
	for _, tr := range fsm.CallTransitions {
		ids = append(ids, tr.ID)
	}
	runUntilCovered(t, cov, ids, func(t *rapid.T) {
		p := fsm.CallParams{T1: ms(t, "t1_ms", 1, 500), MaxDuration: ms(t, "max_duration_ms", 1000, 100000)}
		var m *fsm.CallMachine
		w := newWheel[fsm.CallTimer]()
		draw := func(max int) int { return rapid.IntRange(0, max).Draw(t, "jitter") }
		acked := false // the ACK of our 200 OK came, in this call
		apply := func(effects []fsm.CallEffect) {
			for _, e := range effects {
				e.Run(nil, w.armer(t, draw), w.cancel)
			}
		}
		waits := make([]leadsTo, len(fsm.CallLeadsToInvariants))
		begin := func() {
			m = fsm.NewCallMachine(p, nil)
			w.deadline = map[fsm.CallTimer]time.Duration{}
			acked = false
			effects, err := m.Start()
			if err != nil {
				t.Fatal(err)
			}
			apply(effects)
			for i, inv := range fsm.CallLeadsToInvariants {
				waits[i] = leadsTo{id: inv.ID, since: -1}
			}
		}
		begin()
		var trace []string
		step := func(ev fsm.CallEvent) {
			before := m.State()
			st, err := m.Fire(ev)
			trace = append(trace, ev.String()+" -> "+m.State().String())
			if err != nil {
				t.Fatalf("Fire(%s) in %s: %v\ntrace: %s", ev, st.From, err, strings.Join(trace, "; "))
			}
			if !st.Ignored {
				cov[st.Transition]++
				if !fsm.CallAllowed(st.From, st.To) {
					t.Fatalf("%s took %s to %s, which the model does not allow", ev, st.From, st.To)
				}
			}
			if ev == fsm.CallEventAck {
				acked = true
			}
			byes := slices.ContainsFunc(st.Effects, func(e fsm.CallEffect) bool {
				return e.Kind == fsm.EffectAction && e.Action == fsm.CallActionSendBye
			})
			if byes && before == fsm.CallStateAnswering && !acked && ev != fsm.CallEventTimerAckWait {
				t.Fatalf("a BYE before the ACK of our 200 OK\ntrace: %s", strings.Join(trace, "; "))
			}
			apply(st.Effects)
			if err := m.CheckAlways(); err != nil {
				t.Fatalf("%v\ntrace: %s", err, strings.Join(trace, "; "))
			}
			for i, inv := range fsm.CallLeadsToInvariants {
				if inv.Assumes != "" || !inv.When(m) {
					continue
				}
				if err := waits[i].follow(w.now, time.Duration(inv.Within(m)), slices.Contains(inv.From, m.State()),
					slices.Contains(inv.To, m.State()), false); err != nil {
					t.Fatalf("%v\ntrace: %s", err, strings.Join(trace, "; "))
				}
			}
			if m.State().Final() {
				trace = append(trace, "(next call)")
				begin()
			}
		}
		pick := func(t *rapid.T, events ...fsm.CallEvent) {
			step(pickHandled(t, m.State(), callHandled, events...))
		}
		t.Repeat(map[string]func(*rapid.T){
			"user dials":          func(t *rapid.T) { pick(t, fsm.CallEventUserDial) },
			"a server delivers":   func(t *rapid.T) { pick(t, fsm.CallEventIncomingInvite) },
			"user hangs up":       func(t *rapid.T) { pick(t, fsm.CallEventUserHangup) },
			"the INVITE advances": func(t *rapid.T) { pick(t, fsm.CallEventInviteProvisional, fsm.CallEventInviteAnswered) },
			"the INVITE ends":     func(t *rapid.T) { pick(t, fsm.CallEventInviteEnded) },
			"the ACK comes":       func(t *rapid.T) { pick(t, fsm.CallEventAck) },
			"the far end hangs up": func(t *rapid.T) {
				pick(t, fsm.CallEventRemoteBye)
			},
			"the BYE ends": func(t *rapid.T) { pick(t, fsm.CallEventByeEnded) },
			"the line goes": func(t *rapid.T) {
				if rapid.IntRange(0, 3).Draw(t, "rarely") != 0 {
					t.Skip("a line is rarely removed")
				}
				pick(t, fsm.CallEventLineGone)
			},
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
				for i, inv := range fsm.CallLeadsToInvariants {
					if waits[i].since >= 0 && w.now-waits[i].since > time.Duration(inv.Within(m)) {
						t.Fatalf("%s: in %s since %v, now %v, bound %v\ntrace: %s", inv.ID, m.State(), waits[i].since, w.now, time.Duration(inv.Within(m)), strings.Join(trace, "; "))
					}
				}
			},
		})
	})
}
