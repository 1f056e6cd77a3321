package invariant

import (
	"slices"
	"time"
)

// RetryCap is the longest a binding stays down before it tries its server
// again in concurrent mode (R17): the back-off maximum, and no more than
// the Failback Interval while failback is on.
func (s Settings) RetryCap() time.Duration {
	if s.FailbackEnabled {
		return min(s.FailbackInterval, s.BackoffMax)
	}
	return s.BackoffMax
}

// CheckConcurrent returns every invariant a trace of a line in concurrent
// registration mode (R17) breaks, as of tr.Now. Its transitions are those
// of model/concurrent.yaml. Besides I4 and I11, which read the same: a
// new request (INVITE, MESSAGE) goes only to a server that holds a live
// binding of the line (I5 as R17 reads it); every server that has been up
// long enough holds one (R17: a registration on every server at once);
// and with failback on, a line whose primary has been up long enough, with
// no call holding it when failback waits for idle, is on the primary (I1).
func CheckConcurrent(tr *Trace) []Violation {
	c := newChecker(tr)
	c.i4()
	c.i11()
	c.i5concurrent()
	c.everyServer()
	return c.out
}

// live says whether server s holds a live binding of the line at t: the
// latest record of some Call-ID lasts past t, counting the records made at
// t or not (things at one instant have no order here).
func (c *checker) live(s int, t time.Duration) bool {
	return c.liveAsOf(s, t, t) || c.liveAsOf(s, t-1, t)
}

// liveAsOf: the records made by asOf hold a binding live at t.
func (c *checker) liveAsOf(s int, asOf, t time.Duration) bool {
	latest := map[string]time.Duration{}
	for _, b := range c.tr.Bindings[s] {
		if b.At <= asOf {
			latest[b.CallID] = b.Until
		}
	}
	for _, until := range latest {
		if until > t {
			return true
		}
	}
	return false
}

// i5concurrent: a new request goes only to a server holding a live
// binding of the line (I5 in concurrent mode, R17). A server that lost or
// delayed requests within a registration's life may have let a binding
// lapse that the line still counts on (a refresh lost over TCP waits for
// its budget); it is judged only when it has been up for that long.
func (c *checker) i5concurrent() {
	tr := c.tr
	for s, rs := range tr.Sends {
		for _, r := range rs {
			if r.Method != "INVITE" && r.Method != "MESSAGE" || c.live(s, r.At) {
				continue
			}
			if from := c.upSince(s, r.At); from >= 0 && r.At-from > tr.RefreshBound+64*tr.T1 {
				c.report("I5", r.At, "%s to server %d, which holds no live binding of the line", r.Method, s)
			}
		}
	}
}

// upSince returns since when server s has been up without a break as of
// t, -1 when it is not up at t.
func (c *checker) upSince(s int, t time.Duration) time.Duration {
	from := time.Duration(-1)
	for _, e := range c.tr.Env {
		if e.At > t || e.Server != s {
			continue
		}
		if !e.Up {
			from = -1
		} else if from < 0 {
			from = e.At
		}
	}
	return from
}

// everyServer: a server up for longer than a binding's back-off and its
// budgets holds a live binding of the line (R17), and with failback on the
// line is on the primary once that has been up as long, no call holding
// it when failback waits for idle (I1), unless the user unregistered it.
func (c *checker) everyServer() {
	tr := c.tr
	var moments []time.Duration
	for _, e := range tr.Env {
		moments = append(moments, e.At)
	}
	for _, bs := range tr.Bindings {
		for _, b := range bs {
			if b.Until > 0 && b.Until <= tr.Now {
				moments = append(moments, b.Until)
			}
		}
	}
	moments = append(moments, tr.Now)
	slices.Sort(moments)
	// since returns how long before t the premise has held without a
	// break: s up, and no user action (a registration starts the
	// bindings anew); -1 when it does not hold at t.
	since := func(s int, t time.Duration) time.Duration {
		from := c.upSince(s, t)
		if from < 0 {
			return -1
		}
		for _, u := range tr.Users {
			if u <= t && u > from {
				from = u
			}
		}
		// A request of the line that failed as the line saw it (no answer
		// within its budget, an INVITE's own being shorter; a late one; an
		// unavailable answer) sends the binding into its back-off. The
		// trace shows what the server sent, not what reached the line: the
		// bound counts from the end of the latest request to s. A binding
		// that never comes back gets no request after its last.
		for _, r := range tr.Sends[s] {
			if r.At <= t {
				from = max(from, r.At+tr.BudgetOf(r.Method, s)+tr.RTT)
			}
		}
		return max(from, c.heldUntil(s, t))
	}
	holding := func(t time.Duration) (bool, time.Duration) {
		h, last := false, time.Duration(0)
		for _, x := range tr.Holds {
			if x.At <= t {
				h, last = x.Holds, x.At
			}
		}
		return h, last
	}
	reported := map[int]bool{}
	for _, t := range moments {
		if st, _ := c.state(t); st == "idle" || st == "unregistering" {
			continue
		}
		for s := range tr.Servers {
			// A binding down comes back within its back-off; one the line
			// holds and the server lost (its grant was garbage before it
			// came up), at the next refresh.
			bound := max(tr.RetryCap(), tr.RefreshBound) + 4*(tr.Budget(s)+2*tr.RTT) + tr.RTT
			from := since(s, t)
			if from < 0 || t-from <= bound || reported[s] || c.live(s, t) {
				continue
			}
			reported[s] = true
			c.report("R17", t, "server %d up since %v holds no live binding of the line (bound %v)", s, from, bound)
		}
		from := since(0, t)
		if h, end := holding(t); tr.FailbackWhenIdle && h {
			continue
		} else if tr.FailbackWhenIdle && from >= 0 && end > from {
			from = end
		}
		// The window opens when the line left the primary, if it was there.
		for _, x := range tr.Transitions {
			if x.At <= t && x.From == "primary_registered" && x.To != x.From && from >= 0 && x.At > from {
				from = x.At
			}
		}
		bound := tr.RetryCap() + 4*(tr.Budget(0)+2*tr.RTT) + tr.RTT
		if st, _ := c.state(t); tr.FailbackEnabled && from >= 0 && t-from > bound && st != "primary_registered" && !reported[-1] {
			reported[-1] = true
			c.report("I1", t, "the primary up since %v, and the line is %s (bound %v)", from, st, bound)
		}
	}
}
