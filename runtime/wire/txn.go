package wire

import (
	"time"

	"github.com/emiago/sipgo/sip"
)

// Sent is what an answer must repeat of the request it answers, besides
// the branch that brought it to its transaction (RFC 3261 8.1.3.3, 17.1.3).
type Sent struct {
	CallID  string
	FromTag string
	CSeq    uint32
	Method  sip.RequestMethod
}

// Answers says whether a repeats the Call-ID, From tag, CSeq number and
// method of the request s. An answer that does not is someone else's, or a
// forgery.
func (s Sent) Answers(a *Answer) bool {
	return a.CallID == s.CallID && a.FromTag == s.FromTag && a.CSeq == s.CSeq && a.Method == s.Method
}

// Retransmission is when a client transaction's request goes again over
// an unreliable transport: Timer E of a non-INVITE (T1, 2*T1, 4*T1 ...
// capped at T2; RFC 3261 17.1.2.2) or Timer A of an INVITE (doubling, no
// cap; 17.1.1.2), until a cap of transmissions (0: none). Over TCP and TLS
// a request goes once, and its driver asks no schedule.
type Retransmission struct {
	t2     time.Duration
	invite bool
	max    int
	sent   int
	next   time.Duration
}

// NewRetransmission is the schedule of a request first sent now: t1 and t2
// are the transaction's timers, max its cap of transmissions.
func NewRetransmission(t1, t2 time.Duration, invite bool, max int) Retransmission {
	return Retransmission{t2: t2, invite: invite, max: max, next: t1}
}

// Sent is how many transmissions went.
func (r *Retransmission) Sent() int { return r.sent }

// Transmitted counts one transmission and returns the wait before the
// next; false when the cap is reached and none comes.
func (r *Retransmission) Transmitted() (time.Duration, bool) {
	r.sent++
	if r.max > 0 && r.sent >= r.max {
		return 0, false
	}
	wait := r.next
	r.next = 2 * r.next
	if !r.invite {
		r.next = min(r.next, r.t2)
	}
	return wait, true
}
