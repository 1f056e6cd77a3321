package proptest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/sipfailover/sipfailover/fsm"
)

func drawRequestParams(t *rapid.T) fsm.RequestParams {
	t1 := ms(t, "t1_ms", 1, 500)
	n := rapid.IntRange(1, 4).Draw(t, "server_count")
	p := fsm.RequestParams{
		ServerCount:    n,
		CountMode:      rapid.Bool().Draw(t, "count_mode"),
		RetryCounts:    rapid.IntRange(1, 10).Draw(t, "retry_counts"),
		RetryTime:      ms(t, "retry_time_ms", 1, 32_000),
		T1:             t1,
		T2:             8 * t1,
		InDialog:       rapid.Bool().Draw(t, "in_dialog"),
		FirstServer:    rapid.IntRange(0, n-1).Draw(t, "first_server"),
		LineRegistered: rapid.Bool().Draw(t, "line_registered"),
		LineDown:       rapid.Bool().Draw(t, "line_down"),
		LineServer:     rapid.IntRange(0, n-1).Draw(t, "line_server"),
		IsInvite:       rapid.Bool().Draw(t, "is_invite"),
		RingTimeout:    ms(t, "ring_timeout_ms", 1000, 300_000),
		// R19: an INVITE's own budget; R18: a new request held for the probe.
		InviteRetryCounts: rapid.IntRange(1, 10).Draw(t, "invite_retry_counts"),
		HoldForProbe:      rapid.Bool().Draw(t, "hold_for_probe"),
		// R23: the next server shares registrations; new requests to a
		// server the line is still registering on.
		NextShared:         rapid.Bool().Draw(t, "next_shared"),
		SignalUnregistered: rapid.Bool().Draw(t, "signal_unregistered"),
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("drew invalid params: %v", err)
	}
	return p
}

func requestHandled(state fsm.RequestState) []fsm.RequestEvent {
	return handled(fsm.RequestTransitions[:], func(t fsm.RequestTransition) ([]fsm.RequestState, []fsm.RequestEvent) { return t.From, t.On }, state)
}

// TestRequestModel drives one request after another through the generated
// request machine, with the line registering and failing around it (I5 by
// construction of the model, I6 as bounded leads-to, Q1 and Q2 through
// CheckAlways, and every branch taken).
func TestRequestModel(t *testing.T) {
	cov := coverage{}
	var ids []string
	for _, tr := range fsm.RequestTransitions {
		ids = append(ids, tr.ID)
	}
	runUntilCovered(t, cov, ids, func(t *rapid.T) {
		p := drawRequestParams(t)
		var m *fsm.RequestMachine
		w := newWheel[fsm.RequestTimer]()
		draw := func(max int) int { return rapid.IntRange(0, max).Draw(t, "jitter") }
		apply := func(effects []fsm.RequestEffect) {
			for _, e := range effects {
				e.Run(nil, w.armer(t, draw), w.cancel)
			}
		}
		waits := make([]leadsTo, len(fsm.RequestLeadsToInvariants))
		begin := func() {
			m = fsm.NewRequestMachine(p, nil)
			w.deadline = map[fsm.RequestTimer]time.Duration{}
			effects, err := m.Start()
			if err != nil {
				t.Fatal(err)
			}
			apply(effects)
			for i, inv := range fsm.RequestLeadsToInvariants {
				waits[i] = leadsTo{id: inv.ID, since: -1}
			}
		}
		begin()
		var trace []string
		step := func(ev fsm.RequestEvent) {
			before := m.Vars().Server
			st, err := m.Fire(ev)
			trace = append(trace, ev.String()+" -> "+m.State().String())
			if err != nil {
				t.Fatalf("Fire(%s) in %s: %v\ntrace: %s", ev, st.From, err, strings.Join(trace, "; "))
			}
			if !st.Ignored {
				cov[st.Transition]++
				if !fsm.RequestAllowed(st.From, st.To) {
					t.Fatalf("%s took %s to %s, which the model does not allow", ev, st.From, st.To)
				}
			}
			// I5: every fresh send of a new request goes to the server the
			// line is registered on (a digest resend is the same attempt);
			// R23: or to the one it is registering on, with
			// only_signal_with_registered 0; or, on the request's failover,
			// to the next server when that one shares registrations.
			sends := slices.ContainsFunc(st.Effects, func(e fsm.RequestEffect) bool {
				return e.Kind == fsm.EffectAction && e.Action == fsm.RequestActionSendRequest
			})
			at := m.Vars().Server
			registered := p.LineRegistered && at == p.LineServer
			registering := p.SignalUnregistered && !p.LineDown && at == p.LineServer && st.Transition == "send/5"
			shared := p.NextShared && p.LineRegistered && at == before+1 && strings.HasPrefix(st.Transition, "unavailable/")
			if sends && !p.InDialog && !registered && !registering && !shared {
				t.Fatalf("I5: a new request went to server %d while the line is registered=%v on %d\ntrace: %s", at, p.LineRegistered, p.LineServer, strings.Join(trace, "; "))
			}
			apply(st.Effects)
			if err := m.CheckAlways(); err != nil {
				t.Fatalf("%v\ntrace: %s", err, strings.Join(trace, "; "))
			}
			for i, inv := range fsm.RequestLeadsToInvariants {
				if inv.Assumes != "" || !inv.When(m) {
					continue
				}
				if err := waits[i].follow(w.now, time.Duration(inv.Within(m)), slices.Contains(inv.From, m.State()),
					slices.Contains(inv.To, m.State()), false); err != nil {
					t.Fatalf("%v\ntrace: %s", err, strings.Join(trace, "; "))
				}
			}
			if m.State().Final() {
				trace = append(trace, "(next request)")
				begin()
			}
		}
		handled := func(t *rapid.T, events ...fsm.RequestEvent) {
			step(pickHandled(t, m.State(), requestHandled, events...))
		}
		t.Repeat(map[string]func(*rapid.T){
			"user sends":   func(t *rapid.T) { handled(t, fsm.RequestEventUserSend) },
			"user cancels": func(t *rapid.T) { handled(t, fsm.RequestEventUserCancel) },
			"server answers": func(t *rapid.T) {
				handled(t, fsm.RequestEventResp2xx, fsm.RequestEventRespFinal, fsm.RequestEventRespProvisional)
			},
			"server challenges": func(t *rapid.T) { handled(t, fsm.RequestEventRespChallenge) },
			"server unavailable": func(t *rapid.T) {
				p.NextShared = rapid.Bool().Draw(t, "next_shared")
				m.SetParams(p)
				handled(t, fsm.RequestEventRespUnavailable, fsm.RequestEventTransportIcmp, fsm.RequestEventTransportTcp, fsm.RequestEventServerHeldOff)
			},
			"line registers": func(t *rapid.T) {
				p.LineRegistered, p.LineDown = true, false
				p.LineServer = rapid.IntRange(0, p.ServerCount-1).Draw(t, "line_server")
				p.HoldForProbe = rapid.IntRange(0, 3).Draw(t, "probe_out") == 0 // a probe for new requests (R18)
				m.SetParams(p)
				handled(t, fsm.RequestEventLineRegistered)
			},
			"line goes down": func(t *rapid.T) {
				p.LineRegistered, p.LineDown = false, true
				m.SetParams(p)
				handled(t, fsm.RequestEventLineDown)
			},
			"line starts trying": func(t *rapid.T) {
				p.LineRegistered, p.LineDown = false, false
				m.SetParams(p)
			},
			"wander": func(t *rapid.T) {
				for range rapid.IntRange(1, 20).Draw(t, "steps") {
					if tm, ok := w.next(); ok && rapid.Bool().Draw(t, "timer") {
						w.fire(tm)
						step(tm.Event())
						continue
					}
					var external []fsm.RequestEvent
					for _, on := range requestHandled(m.State()) {
						if !strings.HasPrefix(on.String(), "timer.") && on != fsm.RequestEventLineRegistered && on != fsm.RequestEventLineDown {
							external = append(external, on)
						}
					}
					if len(external) == 0 {
						return
					}
					step(rapid.SampledFrom(external).Draw(t, "event"))
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
			"": func(t *rapid.T) {
				if got := m.FSM().Current(); got != m.State().String() {
					t.Fatalf("looplab is in %s, the machine in %s", got, m.State())
				}
				for i, inv := range fsm.RequestLeadsToInvariants {
					if waits[i].since >= 0 && w.now-waits[i].since > time.Duration(inv.Within(m)) {
						t.Fatalf("%s: in %s since %v, now %v, bound %v\ntrace: %s", inv.ID, m.State(), waits[i].since, w.now, time.Duration(inv.Within(m)), strings.Join(trace, "; "))
					}
				}
			},
		})
	})
}
