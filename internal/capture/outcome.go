package capture

import (
	"fmt"
	"slices"
	"time"
)

// How each transaction ended, and the budgets that decide it.

// Outcome is how a transaction ended, as the wire shows it.
type Outcome struct {
	Kind  string // ok, challenged, again (a 423), unavailable, rejected, timeout, abandoned, pending; sent for an ACK
	At    time.Time
	Frame int // the answer or fault; 0 for a timeout
	What  string
}

// outcome says how t ended by the end of the capture. The phone's budget
// decides it, as it decides it for the phone (R3, R4): a request that had
// neither an answer nor a fault within its budget found its server
// unavailable when the budget ended, whatever came later (an answer the
// phone no longer waits for, a retransmission it should not have sent).
// A provisional answer within the budget says the server is there: the
// final answer may take as long as the far end rings.
func (a *Analysis) outcome(t *Txn) Outcome {
	s := a.Settings
	if t.Method == "ACK" {
		return Outcome{Kind: "sent", At: t.start()} // no answer is due
	}
	end := t.start().Add(a.budget(t))
	// A fault and a final answer at one instant came in the order of
	// their frames.
	if f := t.Fault; f != nil && !f.At.After(end) && (t.Final == nil || f.At.Before(t.Final.At) || f.At.Equal(t.Final.At) && f.Frame < t.Final.Frame) {
		return Outcome{Kind: "unavailable", At: f.At, Frame: f.Frame, What: f.What}
	}
	heard := len(t.Answers) > 0 && t.Answers[0].Code < 200 && t.Answers[0].At.Before(end) // a provisional: the server is there
	// A REGISTER the phone sent again, with a new CSeq, before this one
	// ended (the user asked once more): the phone dropped this one.
	if n := t.next; n != nil && (t.Final == nil && n.start().Before(end) || t.Final != nil && n.start().Before(t.Final.At)) {
		return Outcome{Kind: "abandoned", At: n.start(), What: "replaced by a new REGISTER before it ended"}
	}
	if t.Final != nil && (heard || !t.Final.At.After(end)) {
		o := Outcome{At: t.Final.At, Frame: t.Final.Frame, What: fmt.Sprintf("%d", t.Final.Code)}
		switch c := t.Final.Code; {
		case c < 300 && t.Method == "REGISTER" && t.Expires != 0 && t.Final.Expires == 0:
			// The registrar answered but kept no binding: it cannot serve
			// the phone (R1).
			o.Kind, o.What = "unavailable", fmt.Sprintf("%d granting expires 0", c)
		case c < 300:
			o.Kind = "ok"
		case c == 401 || c == 407:
			o.Kind = "challenged"
		case c == 423 && t.Method == "REGISTER":
			o.Kind = "again" // Interval Too Brief: sent again asking longer (RFC 3261 10.2.8)
		case t.Method == "REGISTER" && len(s.Registrars) > 0 && slices.Contains(registrarCodes, c):
			// The proxy answered for the registrar behind it (R22): the
			// phone tries the next registrar through the same proxy, a
			// REGISTER again to this server; after the last registrar the
			// proxy is as good as unavailable.
			o.Kind, o.What = "unavailable", fmt.Sprintf("%d for the last registrar", c)
			if i := slices.Index(s.Registrars, s.registrarOf(t)); i >= 0 && i < len(s.Registrars)-1 {
				o.Kind, o.What = "again", fmt.Sprintf("%d for the registrar %s: the next one through the same proxy", c, s.Registrars[i])
			}
		case c == 408 || slices.Contains(s.UnavailableCodes, c):
			o.Kind = "unavailable"
		default:
			o.Kind = "rejected"
		}
		return o
	}
	if heard {
		return Outcome{Kind: "pending", At: a.End} // a provisional answer, and no final one yet
	}
	switch {
	case end.After(a.End):
		return Outcome{Kind: "pending", At: a.End}
	case a.abandoned(t):
		return Outcome{Kind: "abandoned", At: t.Sends[len(t.Sends)-1].At, What: "given up by the phone before its budget ended"}
	}
	return Outcome{Kind: "timeout", At: end, What: fmt.Sprintf("no answer within %v", a.budget(t))}
}

// abandoned reports whether the phone gave t up before its budget ended
// (the user hung up a call that had no answer yet: RFC 3261 9.1 allows no
// CANCEL before a 1xx, so the phone drops the transaction). Over UDP its
// retransmissions stop early; over TCP an INVITE has one transmission
// either way, and the wire cannot tell a silent server from a user who
// gave up, so such an INVITE is not taken as the server's failure.
func (a *Analysis) abandoned(t *Txn) bool {
	if t.Transport == "tcp" {
		return t.Method == "INVITE"
	}
	// Transmissions RFC 3261 17.1.1.2 and 17.1.2.2 schedule within the
	// budget: at 0, T1, 3*T1 ..., the interval doubling up to T2.
	budget, due := a.budget(t), 1
	for at, gap := time.Duration(0), a.T1; ; gap = min(2*gap, a.T2) {
		if at += gap; at >= budget {
			break
		}
		due++
	}
	return len(t.Sends) < due
}

// budget is how long the phone waits for an answer to t: the retry budget
// of its server, 64*T1 for a probe (R11) but in failback mode new_requests,
// whose probe a request waits for, at most the primary's budget (R18). A
// probe that may be a round has the shorter of the two: its answer after
// that binds no phone that had given it up.
func (a *Analysis) budget(t *Txn) time.Duration {
	if t.Probe && !t.ownCallID && a.FailbackMode != "new_requests" {
		return 64 * a.T1
	}
	return a.bounds().BudgetOf(t.Method, t.Server)
}

// Budget is server i's retry budget for a request of method (R3, R4,
// R19): how long the phone may try it there before it counts as
// unavailable.
func (s Settings) Budget(method string, i int) time.Duration { return s.bounds().BudgetOf(method, i) }

// RoundBound is how long a round of REGISTERs through every server may
// take (I6).
func (s Settings) RoundBound() time.Duration { return s.bounds().RoundBound() }
