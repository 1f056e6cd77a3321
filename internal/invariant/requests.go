package invariant

import (
	"slices"
	"time"
)

// The invariants of the line's requests: where a new request may go (I5,
// with R23's readings) and where a call's BYE goes (I10), and what the line
// was at the moment a request went out.

// i5: a request goes only to a server the line is registered on at the
// moment it is first sent; and (I6) every request ends within the total of
// the budgets, each twice, once more while the line fails over, and the
// line's own wait.
func (c *checker) i5() {
	tr := c.tr
	for s, rs := range tr.Sends {
		// The server is chosen once per request (Call-ID) and server: its
		// retransmissions and a resend with credentials are the same attempt.
		seen := map[string]bool{}
		for _, r := range rs {
			if (r.Method != "MESSAGE" && r.Method != "INVITE") || seen[r.CallID] {
				continue
			}
			seen[r.CallID] = true
			// Things at one instant have no order here: every state the line
			// was in at the send's instant counts. A server that shares the
			// others' registrations takes requests once the line has
			// registered anywhere; with only_signal_with_registered 0, so
			// does the server the line is registering on (R23).
			if !c.registeredAt(r.At, s) && !(tr.shared(s) && (c.sentBefore(r) || c.passedOver(r.At, s)) && c.everRegistered(r.At)) && !(tr.SignalUnregistered && c.tryingAt(r.At, s)) {
				st, srv := c.state(r.At)
				c.report("I5", r.At, "a %s went to server %d while the line was %s on server %d", r.Method, s, st, srv)
			}
		}
	}
	bound := 3*time.Duration(tr.Servers)*64*tr.T1 + 10*tr.RTT
	for _, q := range tr.Requests {
		end := q.Ended
		if end < 0 {
			end = tr.Now
		}
		if end-q.At > bound {
			c.report("I6", q.At+bound, "a request sent at %v had not ended within %v", q.At, bound)
		}
	}
}

// i10: a call's BYE goes first through the server its dialog was set up
// through, unless that server's
// Retry-After is running (I3); through another server only when the line
// is registered there, after failing over (R7, R16).
func (c *checker) i10() {
	tr := c.tr
	// The server a call's dialog goes through is the one the line sent the
	// ACK of the 2xx it accepted to: an ACK with a branch of its own (the
	// ACK of a failure shares its INVITE's). A 2xx that came after the line
	// had given up on that server is not the dialog's.
	dialog := map[string]int{}          // Call-ID -> server
	setUp := map[string]time.Duration{} // Call-ID -> when the line acknowledged the 2xx
	for s, rs := range tr.Sends {
		invites := map[string]bool{}
		for _, r := range rs {
			if r.Method == "INVITE" {
				invites[r.Branch] = true
			}
		}
		for _, r := range rs {
			if r.Method == "ACK" && !invites[r.Branch] {
				dialog[r.CallID], setUp[r.CallID] = s, r.At
			}
		}
	}
	first := map[string]Request{}
	firstServer := map[string]int{}
	for s, rs := range tr.Sends {
		seen := map[string]bool{} // the server is chosen once per call and server (as in i5)
		for _, r := range rs {
			d, ok := dialog[r.CallID]
			if r.Method != "BYE" || !ok || seen[r.CallID] {
				continue
			}
			seen[r.CallID] = true
			if f, seen := first[r.CallID]; !seen || r.At < f.At || r.At == f.At && r.Seq < f.Seq {
				first[r.CallID], firstServer[r.CallID] = r, s
			}
			// A server that shares the registrations takes the BYE at once
			// (R23).
			if s != d && !c.registeredAt(r.At, s) && !(tr.shared(s) && c.everRegistered(r.At)) {
				st, srv := c.state(r.At)
				c.report("I10", r.At, "a BYE of a call through server %d went to server %d while the line was %s on server %d", d, s, st, srv)
			}
		}
	}
	for id, s := range firstServer {
		if d := dialog[id]; s != d && !c.heldDuring(d, setUp[id], first[id].At) {
			c.report("I10", first[id].At, "the first BYE of a call set up through server %d went to server %d", d, s)
		}
	}
}

// heldDuring reports whether a Retry-After of server s ran at some moment
// in [from, to].
func (c *checker) heldDuring(s int, from, to time.Duration) bool {
	return slices.ContainsFunc(c.holds[s], func(h hold) bool { return h.at <= to && h.until >= from })
}

// registeredAt reports whether, at some point of instant t, the line was
// registered on server s.
func (c *checker) registeredAt(t time.Duration, s int) bool {
	st, srv := c.state(t - 1)
	if slices.Contains(registered, st) && srv == s {
		return true
	}
	for _, x := range c.tr.Transitions {
		if x.At == t && slices.Contains(registered, x.To) && x.Server == s {
			return true
		}
	}
	return false
}

// sentBefore says whether r's request (its Call-ID and method) went to
// another server before: r is its failover, not where it was first sent.
func (c *checker) sentBefore(r Request) bool {
	for _, rs := range c.tr.Sends {
		if slices.ContainsFunc(rs, func(q Request) bool {
			return q.CallID == r.CallID && q.Method == r.Method && (q.At < r.At || q.At == r.At && q.Seq < r.Seq)
		}) {
			return true
		}
	}
	return false
}

// passedOver says whether, at t, the line was registered on a server
// before s whose Retry-After ran: a new request passed it over without
// sending (R1) and failed over at once, which a server that shares the
// registrations takes (R23).
func (c *checker) passedOver(t time.Duration, s int) bool {
	st, d := c.state(t - 1)
	return slices.Contains(registered, st) && d < s && c.heldDuring(d, t, t)
}

// everRegistered says whether the line had registered on some server by t.
func (c *checker) everRegistered(t time.Duration) bool {
	return slices.ContainsFunc(c.tr.Transitions, func(x Transition) bool { return x.At <= t && slices.Contains(registered, x.To) })
}

// tryingAt says whether the line was registering on server s at t, at
// any moment of that instant.
func (c *checker) tryingAt(t time.Duration, s int) bool {
	if st, srv := c.state(t - 1); (st == "registering" || st == "retrying") && srv == s {
		return true
	}
	return slices.ContainsFunc(c.tr.Transitions, func(x Transition) bool {
		return x.At == t && (x.To == "registering" || x.To == "retrying") && x.Server == s
	})
}
