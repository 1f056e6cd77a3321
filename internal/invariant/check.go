package invariant

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sipfailover/sipfailover/fsm"
)

// newChecker prepares the check of tr: the Retry-After each server gave.
func newChecker(tr *Trace) *checker {
	c := &checker{tr: tr, holds: make([][]hold, tr.Servers)}
	for s, rs := range tr.Sends {
		for _, r := range rs {
			if r.RetryAfter > 0 {
				c.holds[s] = append(c.holds[s], hold{r.At, r.At + time.Duration(r.RetryAfter)*time.Second + tr.RTT})
			}
		}
	}
	return c
}

// Violation is an invariant of docs/requirements.md that a trace breaks.
type Violation struct {
	ID  string // I1 ... I10
	At  time.Duration
	Msg string
}

func (v Violation) String() string { return fmt.Sprintf("%s at %v: %s", v.ID, v.At, v.Msg) }

// Check returns every invariant the trace breaks, as of tr.Now.
func Check(tr *Trace) []Violation {
	c := newChecker(tr)
	c.i9()
	c.i2steps()
	c.i3()
	c.i4()
	c.i7()
	c.i5()
	c.i10()
	c.i11()
	c.i11flow()
	c.i12()
	c.walk()
	return c.out
}

type checker struct {
	tr    *Trace
	out   []Violation
	holds [][]hold // by server: every Retry-After a server gave
}

type hold struct{ at, until time.Duration }

func (c *checker) report(id string, at time.Duration, format string, args ...any) {
	c.out = append(c.out, Violation{id, at, fmt.Sprintf(format, args...)})
}

var (
	trying     = []string{"registering", "retrying"}
	registered = []string{"primary_registered", "backup_registered", "probing"}
	onBackup   = []string{"backup_registered", "probing"}
)

// state returns the line's state and server at t.
func (c *checker) state(t time.Duration) (string, int) {
	i, _ := slices.BinarySearchFunc(c.tr.Transitions, t+1, func(x Transition, t time.Duration) int { return int(x.At - t) })
	if i == 0 {
		return "idle", 0
	}
	x := c.tr.Transitions[i-1]
	return x.To, x.Server
}

// heldUntil returns when server s's latest Retry-After, as of t, ends. The
// line counts it from when the 503 reaches it, up to a round trip after the
// server sent it.
func (c *checker) heldUntil(s int, t time.Duration) time.Duration {
	var until time.Duration
	for _, h := range c.holds[s] {
		if h.at <= t {
			until = max(until, h.until)
		}
	}
	return until
}

// i9: every state change is a transition the model allows, by a branch the
// model has.
func (c *checker) i9() {
	ids := map[string]bool{}
	for _, t := range fsm.LineTransitions {
		ids[t.ID] = true
	}
	for _, x := range c.tr.Transitions {
		from, err1 := fsm.ParseLineState(x.From)
		to, err2 := fsm.ParseLineState(x.To)
		if err1 != nil || err2 != nil || !fsm.LineAllowed(from, to) || !ids[x.ID] {
			c.report("I9", x.At, "%s -> %s on %s by %q is not a transition of the model", x.From, x.To, x.Event, x.ID)
		}
	}
}

// i2steps: a REGISTER of a round that a server before the last leaves
// without a final answer moves the line on when the server's budget ends,
// counted from its first transmission: the line leaves the server, or one
// of its steps restarts the budget (a challenge, a Retry-After, the user).
// The walk bounds a whole round, which a challenge or a 423 on every
// server can stretch to four budgets each; this bounds each step (R3-R5).
func (c *checker) i2steps() {
	tr := c.tr
	for s, rs := range tr.Sends {
		if s == tr.Servers-1 {
			continue // the last server's failure ends the round: I6's to bound
		}
		answered := map[string]bool{}
		for _, r := range rs {
			if r.Answer >= 200 {
				answered[r.Branch] = true
			}
		}
		seen := map[string]bool{}
		for _, r := range rs {
			if r.Method != "REGISTER" || seen[r.Branch] {
				continue
			}
			seen[r.Branch] = true
			state, server := c.state(r.At)
			deadline := r.At + tr.Budget(s) + tr.RTT
			if answered[r.Branch] || !slices.Contains(trying, state) || server != s || deadline > tr.Now {
				continue
			}
			stayed := tr.Now
			i, _ := slices.BinarySearchFunc(tr.Transitions, r.At+1, func(x Transition, t time.Duration) int { return int(x.At - t) })
			for _, x := range tr.Transitions[i:] {
				if x.Event != "request.new" && x.Event != "calls.ended" {
					stayed = x.At
					break
				}
			}
			if stayed > deadline {
				c.report("I2", deadline, "REGISTER to server %d sent at %v had no final answer within its budget of %v, and the line stayed there until %v", s, r.At, tr.Budget(s), stayed)
			}
		}
	}
}

// i3: a round begins at the primary and moves one server at a time down the
// list; a server is passed over only after a request was sent to it or while
// its Retry-After runs.
func (c *checker) i3() {
	target := map[string]fsm.LineState{} // branch id -> the state it names as its target
	for _, t := range fsm.LineTransitions {
		target[t.ID] = t.To
	}
	prevServer, prevRegistrar := 0, 0
	for _, x := range c.tr.Transitions {
		switch {
		case target[x.ID] == fsm.LineStateRegistering && (x.Server != 0 || x.Registrar > 1):
			c.report("I3", x.At, "a round began at server %d (registrar %d), not the primary", x.Server, x.Registrar)
		case target[x.ID] == fsm.LineStateRetrying:
			// The next server; behind outbound proxies, the next registrar
			// through the same proxy, or the first through the next proxy
			// (R22).
			nextRegistrar := x.Server == prevServer && x.Registrar == prevRegistrar+1
			nextProxy := x.Server == prevServer+1 && x.Registrar <= 1
			if !nextRegistrar && !nextProxy {
				c.report("I3", x.At, "moved from server %d (registrar %d) to server %d (registrar %d)", prevServer, prevRegistrar, x.Server, x.Registrar)
			}
			// The request that failed went out within the server's budget
			// (twice: a digest challenge restarts it) before the verdict.
			passed := prevServer
			since := x.At - 2*(c.tr.Budget(passed)+c.tr.RTT)
			tried := slices.ContainsFunc(c.tr.Sends[passed], func(r Request) bool {
				return r.At >= since && r.At <= x.At
			})
			// Or a flow keep-alive went there: one that drew ICMP, or one
			// that went unanswered for its wait (R5).
			if passed < len(c.tr.Keepalives) {
				tried = tried || slices.ContainsFunc(c.tr.Keepalives[passed], func(at time.Duration) bool {
					return at >= x.At-flowWait-2*c.tr.RTT && at <= x.At
				})
			}
			if !tried && c.heldUntil(passed, x.At) <= x.At && x.Event != "keepalive.failed" && x.Event != "request.unavailable" {
				c.report("I3", x.At, "passed over server %d without a request, and no Retry-After was running", passed)
			}
		}
		prevServer, prevRegistrar = x.Server, x.Registrar
	}
	c.i3held()
}

// i3held: while a server's Retry-After runs, the line starts no
// transaction there, failback probes included (R1). The hold counts from
// when the 503 can have reached the line, a round trip after the server
// sent it, if that is within the request's budget, and ends with its time
// or a 2xx from the server; ACK and CANCEL belong to transactions already
// running.
func (c *checker) i3held() {
	tr := c.tr
	for s, holds := range c.holds {
		// A 503 that can come after the request's budget ended finds no
		// transaction waiting for it, and holds nothing off.
		if tr.RTT >= tr.Budget(s) {
			continue
		}
		// A 2xx from the server ends a hold (the server is back), from the
		// earliest it can have arrived: as soon as the request it answers
		// went, for a round trip can be that short. One sent before the 503
		// may come after it. A request's own answer excuses nothing of it:
		// each hold keeps the first two 2xx of different transactions.
		type ender struct {
			at     time.Duration
			branch string
		}
		ends := make([][]ender, len(holds))
		for i, h := range holds {
			j, _ := slices.BinarySearchFunc(tr.Sends[s], h.at-tr.RTT, func(x Request, t time.Duration) int { return cmp.Compare(x.At, t) })
			for _, x := range tr.Sends[s][j:] {
				if x.At+tr.RTT >= h.at && x.Answer >= 200 && x.Answer < 300 && (len(ends[i]) == 0 || ends[i][0].branch != x.Branch) {
					ends[i] = append(ends[i], ender{max(x.At, h.at), x.Branch})
					if len(ends[i]) == 2 {
						break
					}
				}
			}
		}
		seen := map[string]bool{}
		for _, r := range tr.Sends[s] {
			first := !seen[r.Branch]
			seen[r.Branch] = true
			if !first || r.Method == "ACK" || r.Method == "CANCEL" {
				continue
			}
			for i, h := range holds {
				end := h.until - tr.RTT
				for _, e := range ends[i] {
					if e.branch != r.Branch {
						end = min(end, e.at)
						break
					}
				}
				if r.At > h.at+tr.RTT && r.At < end {
					c.report("I3", r.At, "%s to server %d while its Retry-After ran (from %v until %v)", r.Method, s, h.at, h.until-tr.RTT)
					return
				}
			}
		}
	}
}

// i4: a request goes to a non-last server at most Signal Retry Counts times
// (count mode), only within its time budget (time mode), and once over TCP;
// the last server gets retransmissions for 64*T1 only.
func (c *checker) i4() {
	tr := c.tr
	for s := range tr.Servers {
		byBranch := map[string][]Request{}
		var order []string
		for _, r := range tr.Sends[s] {
			if r.Method == "ACK" || r.Method == "CANCEL" {
				continue // they share the INVITE's branch but are not its transmissions
			}
			if _, ok := byBranch[r.Branch]; !ok {
				order = append(order, r.Branch)
			}
			byBranch[r.Branch] = append(byBranch[r.Branch], r)
		}
		for _, b := range order {
			rs := byBranch[b]
			first, last := rs[0].At, rs[len(rs)-1].At
			if st, _ := c.state(first); s == 0 && st == "probing" {
				continue // the failback probe lives by 64*T1 (R11)
			}
			switch {
			case tr.Reliable && len(rs) > 1:
				c.report("I4", last, "%d transmissions of one %s to server %d over TCP", len(rs), rs[0].Method, s)
			case s < tr.Servers-1 && tr.CountMode && len(rs) > tr.TransmissionsOf(rs[0].Method):
				c.report("I4", last, "%d transmissions of one %s to server %d; the budget is %d", len(rs), rs[0].Method, s, tr.TransmissionsOf(rs[0].Method))
			case last-first > 64*tr.T1:
				c.report("I4", last, "%s to server %d retransmitted for %v, past 64*T1", rs[0].Method, s, last-first)
			case s < tr.Servers-1 && !tr.CountMode && last-first > tr.BudgetOf(rs[0].Method, s):
				c.report("I4", last, "%s to server %d retransmitted for %v, past its %v budget", rs[0].Method, s, last-first, tr.BudgetOf(rs[0].Method, s))
			}
		}
	}
}

// i11: no server gets more transactions from the line in a minute than
// RateBound allows.
func (c *checker) i11() {
	tr := c.tr
	var users []time.Duration
	users = append(users, tr.Users...)
	for _, r := range tr.Requests {
		users = append(users, r.At)
	}
	for s := range tr.Servers {
		var starts []time.Duration // of each transaction, by its first transmission
		seen := map[string]bool{}
		for _, r := range tr.Sends[s] {
			if !seen[r.Branch] {
				seen[r.Branch] = true
				starts = append(starts, r.At)
			}
		}
		slices.Sort(starts)
		lo := 0
		for hi, at := range starts {
			for starts[lo] <= at-time.Minute {
				lo++
			}
			u := 0
			for _, x := range users {
				if x > at-time.Minute && x <= at {
					u++
				}
			}
			if n := hi - lo + 1; n > tr.RateBound(u) {
				c.report("I11", at, "%d transactions on server %d in the minute up to %v; the bound is %d", n, s, at, tr.RateBound(u))
				return
			}
		}
	}
}

// unavailability are the line events that say its server is unavailable
// (R1), or behind outbound proxies the registrar behind it (R22): the only
// reasons, besides failback and the user, to leave it.
var unavailability = []string{"resp.unavailable", "transport.icmp", "transport.tcp", "timer.budget", "server.held_off",
	"keepalive.failed", "flow.lost", "request.unavailable", "resp.registrar_down"}

// i12: a registered line moves to another server only when its server was
// unavailable, for failback, or because the user asked.
func (c *checker) i12() {
	prevServer := 0
	for _, x := range c.tr.Transitions {
		moved := x.Server != prevServer && slices.Contains(registered, x.From)
		prevServer = x.Server
		if moved && !slices.Contains(unavailability, x.Event) && x.Event != "probe.2xx" && !strings.HasPrefix(x.Event, "user.") {
			c.report("I12", x.At, "left server for server %d on %s (%s), which is no unavailability", x.Server, x.Event, x.ID)
		}
	}
}

// i7: no probe while failback is off, and one probe at a time.
func (c *checker) i7() {
	tr := c.tr
	var visitFrom time.Duration = -1
	for i, x := range tr.Transitions {
		if x.To != "probing" || x.From == "probing" {
			continue
		}
		if !tr.FailbackEnabled {
			c.report("I7", x.At, "probing with failback off")
		}
		visitFrom = x.At
		visitTo := tr.Now
		for _, y := range tr.Transitions[i+1:] {
			if y.To != "probing" {
				visitTo = y.At
				break
			}
		}
		// A probe is a new registration dialog: the line's own, which
		// behind outbound proxies may go through the primary proxy to
		// another registrar (R22), began before the visit.
		before, ids := map[string]bool{}, map[string]bool{}
		for _, rs := range tr.Sends {
			for _, r := range rs {
				if r.Method == "REGISTER" && r.At < visitFrom {
					before[r.CallID] = true
				}
			}
		}
		for _, r := range tr.Sends[0] {
			if r.Method == "REGISTER" && r.Expires != 0 && r.At >= visitFrom && r.At < visitTo && !before[r.CallID] {
				ids[r.CallID] = true
			}
		}
		if len(ids) > 1 {
			c.report("I7", visitFrom, "%d probes (Call-IDs) in flight in one probing visit", len(ids))
		}
	}
}

// event is one point of the merged timeline.
type event struct {
	at    time.Duration
	order int // ties: environment, then user, then transitions, then expiries
	env   *EnvChange
	user  bool
	tr    *Transition
	bind  *Binding // a binding granted or removed
	srv   int      // the server of bind
	check bool     // a binding expiry: a moment to look at I8
	hold  *HoldChange
	// newRequest: the user started a new request (R18's new_requests)
	newRequest bool
}

// timeline merges everything that happened, in time order.
func (c *checker) timeline() []event {
	tr := c.tr
	var ev []event
	for i := range tr.Env {
		ev = append(ev, event{at: tr.Env[i].At, order: 0, env: &tr.Env[i]})
	}
	for _, u := range tr.Users {
		ev = append(ev, event{at: u, order: 1, user: true})
	}
	for i := range tr.Holds {
		ev = append(ev, event{at: tr.Holds[i].At, order: 0, hold: &tr.Holds[i]})
	}
	for _, r := range tr.Requests {
		if r.New {
			ev = append(ev, event{at: r.At, order: 1, newRequest: true})
		}
	}
	for i := range tr.Transitions {
		ev = append(ev, event{at: tr.Transitions[i].At, order: 2, tr: &tr.Transitions[i]})
	}
	for s, bs := range tr.Bindings {
		for i, b := range bs {
			if b.At <= tr.Now {
				ev = append(ev, event{at: b.At, order: 0, bind: &bs[i], srv: s})
			}
			if b.Until > 0 && b.Until <= tr.Now {
				ev = append(ev, event{at: b.Until, order: 3, check: true})
			}
		}
	}
	slices.SortStableFunc(ev, func(a, b event) int {
		if a.at != b.at {
			return int(a.at - b.at)
		}
		return a.order - b.order
	})
	return ev
}

// window is a bounded leads-to: while its premise holds without a break
// (and no user acts), it may last at most bound.
type window struct {
	id    string
	bound time.Duration
	start time.Duration // -1: premise false
	what  string
}

// snapshot is the world at one moment of the walk.
type snapshot struct {
	state    string
	server   int
	up       []bool
	upSince  []time.Duration
	bindings []map[string]time.Duration // by server: Call-ID -> until (0: removed)
}

// walk replays the timeline and judges I1, I2, I6 and I8 at every moment.
func (c *checker) walk() {
	tr := c.tr
	s := snapshot{state: "idle", up: make([]bool, tr.Servers), upSince: make([]time.Duration, tr.Servers),
		bindings: make([]map[string]time.Duration, tr.Servers)}
	for i := range s.bindings {
		s.bindings[i] = map[string]time.Duration{}
	}
	i6trying := &window{id: "I6", bound: tr.RoundBound(), start: -1, what: "trying servers for longer than all the budgets allow"}
	i6failed := &window{id: "I6", bound: tr.BackoffMax + tr.RTT, start: -1, what: "all-failed without trying again within the back-off"}
	// I1 as R18 amends it: a probe comes every Failback Interval (mode
	// duration), at each refresh (registration), or with a new request
	// (new_requests, a window of its own); never while a call holds the
	// line when failback waits for idle.
	i1 := &window{id: "I1", bound: tr.FailbackInterval + 64*tr.T1 + 4*tr.RTT, start: -1, what: "on a lower-priority server with the primary and that server up, not back on the primary"}
	if tr.FailbackMode == "registration" {
		i1.bound = tr.RefreshBound + 64*tr.T1 + 4*tr.RTT
		i1.what += " by the next refresh"
	}
	i1req := &window{id: "I1", bound: 4 * (tr.Budget(0) + 2*tr.RTT), start: -1,
		what: "a new request on a lower-priority server with the primary up (failback mode new_requests), and the line not on the primary"}
	holding := false
	i2 := &window{id: "I2", bound: tr.RoundBound(), start: -1, what: "the current server failed while another was up, and the line did not register on an up server"}
	i2server := -1
	windows := []*window{i6trying, i6failed, i1, i1req, i2}
	var regFrom time.Duration = -1
	judge := func(at time.Duration) {
		for _, w := range windows {
			if w.start >= 0 && at-w.start > w.bound {
				c.report(w.id, w.start+w.bound, "%s (since %v, bound %v)", w.what, w.start, w.bound)
				w.start = -1 // one report a window
			}
		}
	}
	set := func(w *window, holds bool, at time.Duration, restart bool) {
		switch {
		case !holds:
			w.start = -1
		case w.start < 0 || restart:
			w.start = at
		}
	}
	for _, e := range c.timeline() {
		judge(e.at)
		prev, prevServer := s.state, s.server
		switch {
		case e.env != nil:
			if e.env.Up && !s.up[e.env.Server] {
				s.upSince[e.env.Server] = e.at
			}
			s.up[e.env.Server] = e.env.Up
		case e.tr != nil:
			s.state, s.server = e.tr.To, e.tr.Server
		case e.bind != nil:
			s.bindings[e.srv][e.bind.CallID] = e.bind.Until
			continue
		case e.check:
			c.i8at(e.at, s, regFrom)
			continue
		case e.hold != nil:
			holding = e.hold.Holds
		}
		if slices.Contains(registered, s.state) && !slices.Contains(registered, prev) {
			regFrom = e.at
		} else if !slices.Contains(registered, s.state) {
			regFrom = -1
		}
		set(i6trying, slices.Contains(trying, s.state), e.at, e.user)
		set(i6failed, s.state == "all_failed", e.at, e.user)
		canFailBack := tr.FailbackEnabled && slices.Contains(onBackup, s.state) && s.up[0] && s.up[s.server] &&
			!(tr.FailbackWhenIdle && holding)
		periodic := tr.FailbackMode == "" || tr.FailbackMode == "duration" || tr.FailbackMode == "registration"
		set(i1, canFailBack && periodic, e.at, e.user)
		if held := c.heldUntil(0, e.at); i1.start >= 0 && held > i1.start {
			i1.start = held // no probe goes to the primary before its Retry-After ends (R1)
		}
		switch {
		case !canFailBack || tr.FailbackMode != "new_requests":
			i1req.start = -1
		case e.newRequest && i1req.start < 0 && s.state != "probing" && c.heldUntil(0, e.at) <= e.at && s.upSince[0] < e.at:
			// The primary up before the request, not at the same instant:
			// things at one instant have no order here. A request that
			// comes while a probe is out waits for that probe and starts
			// none (R18): the request that started the probe is the one
			// owed a failback.
			i1req.start = e.at
		}
		// I2 opens when the server of a registered line fails (not a user's
		// re-registration) while another server is up: up before that
		// instant, since things at one instant have no order here.
		if e.tr != nil && i2.start < 0 && slices.Contains(registered, prev) && slices.Contains(trying, s.state) &&
			!strings.HasPrefix(e.tr.Event, "user.") {
			for j := range tr.Servers {
				if j != prevServer && s.up[j] && s.upSince[j] < e.at && c.heldUntil(j, tr.Now) <= e.at {
					i2.start, i2server = e.at, j
					break
				}
			}
		}
		if i2.start >= 0 && (e.user || !s.up[i2server] || slices.Contains(registered, s.state) ||
			s.state == "failed" || s.state == "idle" || s.state == "unregistering") {
			i2.start = -1
		}
	}
	judge(tr.Now)
	c.i8at(tr.Now, s, regFrom)
}

// i8at: while the line is registered on a server that has stayed up since,
// the server holds a live binding for it: refreshes come before expiry. A
// server that came up while the registration's 2xx was on its way (within a
// round trip of it) answered as it was before, and is not judged.
func (c *checker) i8at(at time.Duration, s snapshot, regFrom time.Duration) {
	if regFrom < 0 || !s.up[s.server] || s.upSince[s.server] >= regFrom-c.tr.RTT {
		return
	}
	for _, until := range s.bindings[s.server] {
		if until > at {
			return
		}
	}
	c.report("I8", at, "registered on server %d since %v, which has been up, but it holds no live binding", s.server, regFrom)
}
