package capture

// Where a line is at a moment, as its bindings and requests show it: the
// readings every check shares.

import (
	"slices"
	"time"
)

// current is the server the line is on at t: that of the binding granted
// last, while it lives (a phone on one server at a time leaves the old
// binding to expire where it failed, R12); -1 when that one ran out or was
// removed.
func (l *LineTrace) current(t time.Time) int {
	newest := l.newest(t)
	if newest == nil || !newest.live(t) {
		return -1 // the newest ran out, or was removed: an older one is a server the phone left
	}
	return newest.Server
}

// ownCallID reports whether t has the Call-ID of the newest binding the
// line holds when it is sent.
func (l *LineTrace) ownCallID(t *Txn) bool {
	newest := l.newest(t.start())
	return newest != nil && newest.CallID == t.CallID
}

// settled reports whether the line is on server k at t, has begun no new
// round elsewhere since it registered there, and has not left it otherwise
// (left).
func (a *Analysis) settled(l *LineTrace, k int, t time.Time) bool {
	if l.current(t) != k || a.left(l, t) {
		return false
	}
	var from time.Time
	var callID string
	for _, b := range l.Bindings {
		if !b.Late && b.Server == k && b.live(t) && b.From.After(from) {
			from, callID = b.From, b.CallID
		}
	}
	// A REGISTER elsewhere of its own Call-ID is a new round: it takes the
	// line away. A probe (a Call-ID of its own) that fails leaves it where it
	// was (R11); one that succeeds moves its newest binding.
	// Over TCP a round's REGISTER to a server that is down shows as a
	// refused connection.
	return !slices.ContainsFunc(l.Txns, func(u *Txn) bool {
		if u.Server == k || !u.start().After(from) || !u.start().Before(t) {
			return false
		}
		return u.Method == "REGISTER" && u.Expires != 0 && u.CallID == callID ||
			u.Method == "SYN" && !u.Probe && (a.carriedRegister(l, u) || a.failedJustBefore(l, k, u.start()))
	}) && !slices.ContainsFunc(l.Txns, func(u *Txn) bool {
		// A REGISTER there still undecided at t: a refresh, or a round
		// that came back to it; either way the phone may be between
		// servers.
		return u.Method == "REGISTER" && u.Server == k && u.Expires != 0 && u.start().After(from) && u.start().Before(t) && a.outcome(u).At.After(t)
	})
}

// failedJustBefore reports whether a request to server k failed within the
// slack before t: what the phone sends elsewhere then is its failover.
func (a *Analysis) failedJustBefore(l *LineTrace, k int, t time.Time) bool {
	return slices.ContainsFunc(l.Txns, func(w *Txn) bool {
		if w.Server != k || w.Method == "ACK" {
			return false
		}
		o := a.outcome(w)
		return failed(o) && !o.At.After(t) && t.Sub(o.At) <= a.Slack
	})
}

// left reports whether the line, by t, left the server it holds its
// newest binding on, though the binding still runs: it de-registered (its
// user took it down), a REGISTER of its own there failed or was refused,
// another request there (a keep-alive, a call's) or a flow keep-alive
// found it unavailable, a
// connection to it was refused, or it began a new round elsewhere with its
// registration's Call-ID (a probe has one of its own).
func (a *Analysis) left(l *LineTrace, t time.Time) bool {
	k := l.current(t)
	var from time.Time
	var callID string
	for _, b := range l.Bindings {
		if !b.Late && b.Server == k && b.live(t) && b.From.After(from) {
			from, callID = b.From, b.CallID
		}
	}
	if slices.ContainsFunc(a.flowLost[k], func(at time.Time) bool { return at.After(from) && !at.After(t) }) {
		return true // a flow keep-alive found the server unavailable (R1, R5)
	}
	return slices.ContainsFunc(l.Txns, func(u *Txn) bool {
		if u.Method == "SYN" && u.Server == k && u.start().After(from) {
			// Over TCP its connection to the server was refused: the flow
			// it was registered over is gone (RFC 5626).
			return !a.outcome(u).At.After(t)
		}
		if u.Method != "REGISTER" && u.Method != "ACK" && u.Server == k && u.start().After(from) {
			// A keep-alive or a request there found the server unavailable
			// (R5-R8).
			o := a.outcome(u)
			return failed(o) && !o.At.After(t)
		}
		if u.Method != "REGISTER" || !u.start().After(from) || u.start().After(t) {
			return false
		}
		switch o := a.outcome(u); {
		case u.Server != k && !u.start().Before(t):
			return false // at the same instant: the wire does not order them
		case u.Expires == 0:
			return true
		case u.Server == k && (o.Kind == "challenged" || o.Kind == "again"):
			return !o.At.Add(a.Slack).After(t) && a.refusedBy(l, u)
		case u.Server == k:
			return (failed(o) || o.Kind == "rejected") && !o.At.After(t)
		default:
			return u.CallID == callID
		}
	})
}

// newest is the binding the phone took last by t (of two at one instant,
// the one it read last), leaving out a refresh answered after the phone had
// moved elsewhere (stale); nil for none.
func (l *LineTrace) newest(t time.Time) *Binding {
	var newest *Binding
	for _, b := range l.Bindings {
		if b.Late || b.stale || b.From.After(t) {
			continue
		}
		if newest == nil || b.From.After(newest.From) || b.From.Equal(newest.From) && b.Frame > newest.Frame {
			newest = b
		}
	}
	return newest
}

// liveAt reports whether the line held a binding on server at t.
func (l *LineTrace) liveAt(server int, t time.Time) bool {
	return slices.ContainsFunc(l.Bindings, func(b *Binding) bool { return b.Server == server && b.live(t) })
}

func (b *Binding) live(t time.Time) bool {
	until := b.Until
	if b.Removed {
		until = b.RemovedBefore
	}
	return !t.Before(b.From) && t.Before(until)
}

// refusedBy reports whether REGISTER u ended with its server refusing the
// line: a final refusal, or credentials the server challenged again (or a
// 423) that the phone sent nothing more after within the slack. The line
// then gives the server up and waits for its back-off (R1, I9).
func (a *Analysis) refusedBy(l *LineTrace, u *Txn) bool {
	if u.Method != "REGISTER" || u.Expires == 0 {
		return false
	}
	switch o := a.outcome(u); o.Kind {
	case "rejected":
		return true
	case "challenged", "again":
		return !slices.ContainsFunc(l.Txns, func(r *Txn) bool {
			return r.Method == "REGISTER" && r.Server == u.Server && !r.start().Before(o.At) && !r.start().After(o.At.Add(a.Slack))
		})
	}
	return false
}
