package lab

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sipfailover/sipfailover/fsm"
	"github.com/sipfailover/sipfailover/internal/labserver"
)

// Trigger is what makes the phone find its server broken.
type Trigger string

// The triggers of a case.
const (
	// Timers: the phone's own refresh or OPTIONS keep-alive, whichever
	// comes first; the case runs unattended.
	Timers Trigger = "timers"
	// Dial: the phone places a call (-dial) just after the fault.
	Dial Trigger = "call"
	// Hangup: a call is up through the primary when it breaks, and the
	// phone hangs up (-hangup); its BYE must reach the far end.
	Hangup Trigger = "hangup"
	// FarCall: once the phone is on the backup, the far end calls it
	// there; the registration it made must lead the call to it. It runs
	// unattended.
	FarCall Trigger = "farcall"
)

// Case is one way the phone must fail over and back: the primary broken
// by a fault, found broken by a trigger, then mended.
type Case struct {
	Name    string
	Fault   labserver.Fault
	Trigger Trigger
	// Events are the models' events the case plays: for a way to lose the
	// primary, those of model/line.yaml's primary_lost transition it
	// raises; for the others, what the phone must do instead.
	Events []string
	// Both breaks the backup as well: every server down, then the primary
	// back (R9).
	Both bool
	// Stays: the primary is slow but answers within the phone's budget,
	// or only reset the phone's connection, and the phone must not leave
	// it (R1, R3, R5).
	Stays bool
}

// A fault raises, with a trigger, the model events it stands for.
type raising struct {
	fault   labserver.Fault
	trigger Trigger
	tcp     bool // over TCP only; false: over UDP only, unless any
	any     bool // over both transports
}

// raisedBy says, for each event by which the line model loses its
// primary, the faults and triggers that raise it on a real network.
var raisedBy = map[fsm.LineEvent][]raising{
	fsm.LineEventRespUnavailable:    {{fault: labserver.Unavailable, trigger: Timers, any: true}},
	fsm.LineEventServerHeldOff:      {{fault: labserver.RetryAfter, trigger: Timers, any: true}},
	fsm.LineEventTransportIcmp:      {{fault: labserver.Kill, trigger: Timers}},
	fsm.LineEventTransportTcp:       {{fault: labserver.Kill, trigger: Timers, tcp: true}},
	fsm.LineEventTimerBudget:        {{fault: labserver.Freeze, trigger: Timers, any: true}, {fault: labserver.Drop, trigger: Timers, any: true}},
	fsm.LineEventKeepaliveFailed:    {{fault: labserver.Freeze, trigger: Timers, any: true}},
	fsm.LineEventFlowLost:           {{fault: labserver.Kill, trigger: Timers, any: true}},
	fsm.LineEventRequestUnavailable: {{fault: labserver.Freeze, trigger: Dial, any: true}, {fault: labserver.Unavailable, trigger: Dial, any: true}, {fault: labserver.Kill, trigger: Hangup, any: true}},
}

// lostBy is the line model's transition by which the primary is lost.
const lostBy = "primary_lost"

// DefaultPlan derives the cases from the line model: one for each fault
// and trigger that raises an event by which the model loses its primary,
// over the transport given ("udp" or "tcp"), then every server down at
// once. A model event the lab knows no fault for is an error: the lab
// would pass a phone on a way of failing it never tried.
func DefaultPlan(transport string) ([]Case, error) {
	var events []fsm.LineEvent
	for _, t := range fsm.LineTransitions {
		if strings.HasPrefix(t.ID, lostBy+"/") || t.ID == lostBy {
			for _, e := range t.On {
				if !slices.Contains(events, e) {
					events = append(events, e)
				}
			}
		}
	}
	if len(events) == 0 {
		return nil, fmt.Errorf("the line model has no transition %s: the lab cannot tell how it loses its primary", lostBy)
	}
	var plan []Case
	for _, e := range events {
		rs, ok := raisedBy[e]
		if !ok {
			return nil, fmt.Errorf("the line model loses its primary on %s, which no fault of the lab raises", e)
		}
		for _, r := range rs {
			if !r.any && r.tcp != (transport == "tcp") {
				continue
			}
			name := string(r.fault) + "/" + string(r.trigger)
			k := slices.IndexFunc(plan, func(c Case) bool { return c.Name == name })
			if k < 0 {
				plan = append(plan, Case{Name: name, Fault: r.fault, Trigger: r.trigger})
				k = len(plan) - 1
			}
			plan[k].Events = append(plan[k].Events, e.String())
		}
	}
	// The unattended cases first, then those that need the user.
	order := map[Trigger]int{Timers: 0, FarCall: 1, Dial: 2, Hangup: 3}
	slices.SortStableFunc(plan, func(a, b Case) int { return order[a.Trigger] - order[b.Trigger] })
	// Beside the ways to lose the primary, the way not to: an answer that
	// comes late but within the budget is an answer (R3). And every
	// server down at once (R9).
	// And, the primary lost, a call from the far end reaches the phone
	// through the backup (the call model's incoming.invite).
	slow := Case{Name: "slow/timers", Fault: labserver.Slow, Trigger: Timers, Stays: true}
	far := Case{Name: "kill/farcall", Fault: labserver.Kill, Trigger: FarCall}
	both := Case{Name: "both-down", Fault: labserver.Kill, Trigger: Timers, Both: true}
	reset := Case{Name: "reset/hangup", Fault: labserver.Reset, Trigger: Hangup, Stays: true}
	for _, c := range []*Case{&slow, &far, &both, &reset} {
		c.Events = eventsOf(*c, transport)
	}
	plan = slices.Insert(plan, slices.IndexFunc(plan, func(c Case) bool { return c.Trigger != Timers }), slow, far)
	if transport == "tcp" {
		// Over TCP, the connection reset in the middle of a call: the
		// server is up, the phone connects again and stays (R1, R5).
		plan = append(plan, reset)
	}
	return append(plan, both), nil
}
