package capture

import (
	"fmt"
	"slices"
	"time"
)

// The verdicts of an invariant.
const (
	Held        = "held"
	Violated    = "violated"
	Undecidable = "not decidable"
)

// Verdict is what a capture says of one invariant of docs/requirements.md.
type Verdict struct {
	ID       string
	Title    string
	Status   string    // Held, Violated or Undecidable
	Why      string    // what was judged, or why it cannot be
	Findings []Finding `json:",omitempty"`
}

// Finding is one violation: where in the capture, and what.
type Finding struct {
	Line   string
	At     time.Duration // since the capture's first frame
	Frames []int
	Msg    string
}

// verdict gathers one invariant's findings over every line.
type verdict struct {
	Verdict
	judged  int // instances the capture decided
	unknown int // instances it could not decide
}

// undecidable says why the capture cannot decide the invariant at all.
func (v *verdict) undecidable(why string) Verdict {
	v.Status, v.Why = Undecidable, why
	return v.Verdict
}

func (v *verdict) violated(a *Analysis, l *LineTrace, at time.Time, frames []int, format string, args ...any) {
	frames = slices.Compact(slices.Sorted(slices.Values(frames)))
	v.Findings = append(v.Findings, Finding{Line: l.AOR, At: at.Sub(a.Begin), Frames: frames, Msg: fmt.Sprintf(format, args...)})
}

// done settles the status: violated with any finding; held when some
// instance was judged; else not decidable, with why.
func (v *verdict) done(what, none string) Verdict {
	switch {
	case len(v.Findings) > 0:
		v.Status = Violated
		v.Why = fmt.Sprintf("%d of %d %s", len(v.Findings), v.judged, what)
	case v.judged > 0:
		v.Status = Held
		v.Why = fmt.Sprintf("%d %s", v.judged, what)
		if v.unknown > 0 {
			v.Why += fmt.Sprintf("; %d more the capture ends too soon to judge", v.unknown)
		}
	default:
		v.Status, v.Why = Undecidable, none
	}
	return v.Verdict
}

// Check judges every invariant of docs/requirements.md that the capture
// can decide, and says of each other why it cannot.
func (a *Analysis) Check() []Verdict {
	return []Verdict{
		a.i1(), a.i2(), a.i3(), a.i4(), a.i5(), a.i6(), a.i7(), a.i8(), a.i9(), a.i10(), a.i11(), a.i12(),
	}
}

func frames(ms []*Message) []int {
	out := make([]int, len(ms))
	for i, m := range ms {
		out[i] = m.Frame
	}
	return out
}

func failed(o Outcome) bool { return o.Kind == "unavailable" || o.Kind == "timeout" }

// i4: transmissions of one request within the server's budget: at most
// Signal Retry Counts (count mode) or within Retry Time (time mode) to a
// non-last server, for at most 64*T1 to the last or as a probe, and one
// over TCP.
func (a *Analysis) i4() Verdict {
	v := &verdict{Verdict: Verdict{ID: "I4", Title: "retransmits within each server's budget"}}
	for _, l := range a.Lines {
		for _, t := range l.Txns {
			if t.Method == "ACK" || t.Method == "CANCEL" || t.Method == "SYN" {
				continue
			}
			v.judged++
			first, last := t.start(), t.Sends[len(t.Sends)-1].At
			nonLast := t.Server < len(a.Servers)-1 && !t.Probe
			switch {
			case t.Transport == "tcp" && len(t.Sends) > 1:
				v.violated(a, l, last, frames(t.Sends), "%d transmissions of one %s to server %d over TCP", len(t.Sends), t.Method, t.Server+1)
			case nonLast && a.CountMode && len(t.Sends) > a.bounds().TransmissionsOf(t.Method):
				v.violated(a, l, last, frames(t.Sends), "%d transmissions of one %s to server %d; its budget is %d",
					len(t.Sends), t.Method, t.Server+1, a.bounds().TransmissionsOf(t.Method))
			case last.Sub(first) > 64*a.T1+a.Slack:
				v.violated(a, l, last, frames(t.Sends), "%s to server %d retransmitted for %v, past 64*T1", t.Method, t.Server+1, last.Sub(first).Round(time.Millisecond))
			case nonLast && !a.CountMode && last.Sub(first) > a.RetryTime+a.Slack:
				v.violated(a, l, last, frames(t.Sends), "%s to server %d retransmitted for %v, past its %v budget", t.Method, t.Server+1,
					last.Sub(first).Round(time.Millisecond), a.RetryTime)
			}
		}
	}
	return v.done("transactions", "the phone sent no request to the servers")
}

// resends returns, for each transaction of l, whether it goes on with a
// request of the same Call-ID and method that its server had just
// answered with a challenge or a 423: the same request with credentials or
// a longer expiry, to the server it was started on, wherever the line has
// gone since.
func (a *Analysis) resends(l *LineTrace) map[*Txn]bool {
	type request struct {
		callID, method string
		server         int
	}
	asked := map[request][]time.Time{} // when the server asked for the request again
	for _, u := range l.Txns {
		if o := a.outcome(u); o.Kind == "challenged" || o.Kind == "again" {
			k := request{u.CallID, u.Method, u.Server}
			asked[k] = append(asked[k], o.At)
		}
	}
	out := map[*Txn]bool{}
	for _, t := range l.Txns {
		out[t] = slices.ContainsFunc(asked[request{t.CallID, t.Method, t.Server}], func(at time.Time) bool {
			return !t.start().Before(at) && t.start().Sub(at) < a.Slack+a.T1
		})
	}
	return out
}

// shared says whether server k has register_on_enable 0 (R23).
func (s Settings) shared(k int) bool { return k < len(s.Shared) && s.Shared[k] }

// goesOn reports whether t carries on a request the line sent before (the
// same Call-ID and method, to this server or another): a resend with
// credentials, or its failover to the next server, which a server that
// shares the registrations takes at once (R23). Only a request's first
// transaction is where the line chose to send a new one.
func (l *LineTrace) goesOn(t *Txn) bool {
	return slices.ContainsFunc(l.Txns, func(u *Txn) bool {
		return u != t && u.CallID == t.CallID && u.Method == t.Method && u.start().Before(t.start())
	})
}

// passedOver reports whether the server the phone is registered on when t
// is sent comes before t's and its Retry-After may run then: a new request
// passes it over without sending (R1) and fails over at once, so its first
// transaction on the wire is its failover.
func (a *Analysis) passedOver(l *LineTrace, t *Txn) bool {
	cur := l.current(t.start())
	return cur >= 0 && cur < t.Server && a.held(l, cur, t.start(), false)
}

// i5: a new INVITE or MESSAGE goes only to a server that holds a binding
// of the line when it is first sent; a BYE only to one that did when its
// call was set up or holds one now.
func (a *Analysis) i5() Verdict {
	v := &verdict{Verdict: Verdict{ID: "I5", Title: "sends INVITE and BYE only to a server it is registered on"}}
	for _, l := range a.Lines {
		resent := a.resends(l)
		for _, t := range l.Txns {
			if t.Method != "INVITE" && t.Method != "MESSAGE" && t.Method != "BYE" || t.InDialog && t.Method != "BYE" {
				continue
			}
			if resent[t] {
				continue // judged as the request it goes on with
			}
			v.judged++
			if l.liveAt(t.Server, t.start()) {
				// In successive mode the phone is registered on one server
				// at a time: a binding it left behind on another (after a
				// failback without de-registering, R12) is not where its
				// new requests go, once the phone has had the slack to take
				// the newer one: a request the user starts as the probe's
				// 2xx arrives goes where the line still is (R10).
				if cur := l.current(t.start()); !a.Concurrent && t.Method != "BYE" && cur >= 0 && cur != t.Server && a.standing(l, cur, t.start()) &&
					t.start().Sub(l.newest(t.start()).From) > a.Slack && !(a.shared(t.Server) && l.goesOn(t)) {
					v.violated(a, l, t.start(), []int{t.Sends[0].Frame}, "a %s went to server %d, whose binding the phone had left behind, while it was registered on server %d",
						t.Method, t.Server+1, cur+1)
				}
				continue
			}
			if d, _ := a.dialogServer(l, t.CallID); t.Method == "BYE" && d == t.Server {
				continue // I10's to judge: the dialog's server
			}
			if a.refreshing(l, t.Server, t.start()) {
				continue // its binding ran out while its refresh waits: the phone cannot know yet
			}
			if t.Method != "BYE" && a.SignalUnregistered && a.registering(l, t.Server, t.start()) {
				continue // only_signal_with_registered 0 (R23): it may go where the phone is registering
			}
			if a.shared(t.Server) && (l.goesOn(t) || t.Method == "BYE" || a.passedOver(l, t)) && slices.ContainsFunc(l.Bindings, func(b *Binding) bool { return b.live(t.start()) }) {
				continue // register_on_enable 0 (R23): a request failing over to it shares the binding the phone holds elsewhere
			}
			registered := "nowhere"
			for k := range a.Servers {
				if l.liveAt(k, t.start()) {
					registered = fmt.Sprintf("on server %d", k+1)
					break
				}
			}
			v.violated(a, l, t.start(), []int{t.Sends[0].Frame}, "a %s went to server %d while the phone was registered %s", t.Method, t.Server+1, registered)
		}
	}
	return v.done("INVITEs, MESSAGEs and BYEs", "the phone sent no INVITE, MESSAGE or BYE to the servers")
}

// refreshing reports whether, at t, a REGISTER refreshing a binding the
// line held on server k (sent while the binding ran) still waits for its
// outcome: until then the phone is registered there as far as it can
// know, though the binding's time has run out.
func (a *Analysis) refreshing(l *LineTrace, k int, t time.Time) bool {
	return slices.ContainsFunc(l.registers(), func(u *Txn) bool {
		if u.Server != k || u.Expires == 0 || !a.outstanding(u, t) {
			return false
		}
		return slices.ContainsFunc(l.Bindings, func(b *Binding) bool { return b.Server == k && b.live(u.start()) })
	})
}

// outstanding reports whether transaction u waits for its outcome at t:
// from its first transmission until its final answer, or its budget's end.
// A phone that gave it up sooner (the request that found the server gone,
// in concurrent mode) stops retransmitting, which the wire shows before
// the reason does.
func (a *Analysis) outstanding(u *Txn, t time.Time) bool {
	end := u.start().Add(a.budget(u))
	if u.Final != nil {
		end = u.Final.At
	}
	return !u.start().After(t) && !end.Before(t)
}

// registering reports whether, at t, a REGISTER of the line to server k
// waits for its outcome: the phone is registering there.
func (a *Analysis) registering(l *LineTrace, k int, t time.Time) bool {
	return slices.ContainsFunc(l.registers(), func(u *Txn) bool { return u.Server == k && u.Expires != 0 && a.outstanding(u, t) }) ||
		a.connectingTo(k, t)
}

// connectingTo reports whether, at t, a connection to server k was being
// opened: what it is to carry (a REGISTER, perhaps) is not on the wire yet.
func (a *Analysis) connectingTo(k int, t time.Time) bool {
	return slices.ContainsFunc(a.connecting[k], func(c [2]time.Time) bool { return !t.Before(c[0]) && !t.After(c[1]) })
}

// standing reports whether the phone is settled on server k at t and
// nothing has said since its registration there that k is unavailable: no
// transaction with k failed or was refused, and k reset no connection.
func (a *Analysis) standing(l *LineTrace, k int, t time.Time) bool {
	b := l.newest(t)
	if b == nil || !a.settled(l, k, t) {
		return false
	}
	// A binding elsewhere as new as k's (a probe's 2xx at this instant, in
	// failback mode new_requests) may have moved the phone already.
	if slices.ContainsFunc(l.Bindings, func(o *Binding) bool { return o.Server != k && o.live(t) && !o.From.Before(b.From) }) {
		return false
	}
	since := func(at time.Time) bool { return !at.Before(b.From) && !at.After(t) }
	for _, u := range l.Txns {
		if o := a.outcome(u); u.Server == k && (failed(o) || o.Kind == "rejected") && since(o.At) {
			return false
		}
	}
	return !slices.ContainsFunc(a.resets[k], since)
}

// dialogServer is the server a call's dialog was set up through (the one
// its INVITE got a 2xx from; -1 if none) and when.
func (a *Analysis) dialogServer(l *LineTrace, callID string) (int, time.Time) {
	if l.dialogs == nil {
		l.dialogs = map[string]dialog{}
		invites := map[string]bool{} // branches of INVITEs: an ACK of a failure shares its INVITE's
		for _, t := range l.Txns {
			if t.Method == "INVITE" {
				invites[t.Branch] = true
			}
		}
		// The server the phone acknowledged a 2xx through (an ACK with a
		// branch of its own) is the one it took the dialog with; a 2xx that
		// came after the phone had given up on that server is not.
		for _, t := range l.Txns {
			if _, seen := l.dialogs[t.CallID]; !seen && t.Method == "ACK" && !invites[t.Branch] {
				l.dialogs[t.CallID] = dialog{t.Server, t.start()}
			}
		}
		for _, t := range l.Txns {
			if _, seen := l.dialogs[t.CallID]; !seen && t.Method == "INVITE" && !t.InDialog {
				if o := a.outcome(t); o.Kind == "ok" {
					l.dialogs[t.CallID] = dialog{t.Server, o.At}
				}
			}
		}
	}
	if d, ok := l.dialogs[callID]; ok {
		return d.server, d.at
	}
	return -1, time.Time{}
}

// dialog is the server a call was set up through, and when.
type dialog struct {
	server int
	at     time.Time
}

func (a *Analysis) i6() Verdict {
	return Verdict{ID: "I6", Title: "every request ends within the budgets; the line keeps retrying", Status: Undecidable,
		Why: "when a request ends for the user and whether the line still retries are the phone's own state; the wire shows its requests, not their end"}
}

// i7: one probe at a time, and none with failback off.
func (a *Analysis) i7() Verdict {
	v := &verdict{Verdict: Verdict{ID: "I7", Title: "one failback probe at a time; none with failback off"}}
	for _, l := range a.Lines {
		var prev *Txn
		for _, t := range l.Txns {
			if !t.Probe || t.Method == "SYN" { // a refused connection carries nothing in flight
				continue
			}
			// A REGISTER with the Call-ID of the line's own registration may
			// be a new round (the user's, or one after the backup failed),
			// which the wire cannot tell from a probe: only probes of their
			// own count here.
			if slices.ContainsFunc(l.Bindings, func(b *Binding) bool { return b.CallID == t.CallID && b.live(t.start()) }) {
				continue
			}
			v.judged++
			if !a.FailbackEnabled {
				v.violated(a, l, t.start(), []int{t.Sends[0].Frame}, "a probe of the primary with failback off")
			}
			if prev != nil {
				o := a.outcome(prev)
				end := o.At
				if o.Kind == "pending" || o.Kind == "timeout" {
					end = prev.start().Add(a.budget(prev))
				}
				// A new round abandons a probe (over TCP the wire shows no
				// end of it): the first REGISTER of another Call-ID after it.
				for _, u := range l.Txns {
					if u.Method == "REGISTER" && u.CallID != prev.CallID && u.start().After(prev.start()) && u.start().Before(end) {
						end = u.start()
						break
					}
				}
				if t.start().Before(end) && t.CallID != prev.CallID {
					v.violated(a, l, t.start(), []int{prev.Sends[0].Frame, t.Sends[0].Frame},
						"a second probe while the one sent at %v was in flight", prev.start().Sub(a.Begin).Round(time.Millisecond))
				}
			}
			prev = t
		}
	}
	return v.done("probes", "the phone sent no failback probe in the capture")
}

// i8: a binding still in use is refreshed before it expires: the line
// holds no other binding of a later 2xx, and the server is not known
// unavailable.
func (a *Analysis) i8() Verdict {
	v := &verdict{Verdict: Verdict{ID: "I8", Title: "refreshes a registration before it expires"}}
	for _, l := range a.Lines {
		for _, b := range l.Bindings {
			if b.Late {
				continue // the phone does not know it holds it
			}
			if b.Granted < minGrant {
				v.unknown++ // a rogue grant: no phone refreshes that fast without storming the server (I11)
				continue
			}
			if b.Refreshed || b.Removed && b.RemovedBefore.Before(b.Until) {
				v.judged++
				continue
			}
			if b.Until.After(a.End) {
				v.unknown++
				continue
			}
			// Moved on: a later binding elsewhere, or its server failed.
			// (a binding elsewhere from about when this one began: a probe
			// answered just before a refresh moved the line, R18's mode
			// registration)
			moved := slices.ContainsFunc(l.Bindings, func(c *Binding) bool {
				return c.Server != b.Server && !c.Late && c.From.After(b.From.Add(-a.Slack))
			}) ||
				slices.ContainsFunc(l.Txns, func(t *Txn) bool { // a new round, or the line taken down
					return t.Method == "REGISTER" && t.start().After(b.From) && !t.start().After(b.Until) &&
						(t.Expires == 0 || t.Server != b.Server && t.CallID == b.CallID)
				})
			// Or it tried: a refresh the server refused (a 403) was still
			// sent in time; or its server failed, by a request sent in the
			// binding's life or one that was out when it began (a
			// keep-alive or an INVITE whose budget ended after the
			// refresh's 2xx), or the phone's flow there was lost (ICMP, a
			// reset, a flow keep-alive unanswered).
			down := slices.ContainsFunc(a.resets[b.Server], func(at time.Time) bool {
				return at.After(b.From) && !at.After(b.Until)
			}) || slices.ContainsFunc(l.Txns, func(t *Txn) bool {
				// (a request fails within 64*T1 of its start)
				if t.Server != b.Server || t.start().After(b.Until) || t.start().Before(b.From.Add(-64*a.T1-a.Slack)) {
					return false
				}
				o := a.outcome(t)
				inLife := func(at time.Time) bool { return at.After(b.From) && !at.After(b.Until) }
				// A request over TCP that the wire cannot tell failed from
				// given up (abandoned) may have failed when its budget
				// ended: the phone then lets the binding go.
				if failed(o) && inLife(o.At) || o.Kind == "abandoned" && inLife(t.start().Add(a.budget(t))) {
					return true
				}
				return t.start().After(b.From) && !t.start().After(b.Until) &&
					(failed(o) || o.Kind == "abandoned" || t.Method == "REGISTER" && t.Expires != 0)
			})
			v.judged++
			if !moved && !down {
				v.violated(a, l, b.Until, []int{b.Frame}, "the binding server %d granted for %v expired without a refresh", b.Server+1, b.Granted)
			}
		}
	}
	return v.done("registrations", "no registration of the phone reached its expiry within the capture")
}

func (a *Analysis) i9() Verdict {
	return Verdict{ID: "I9", Title: "every state change is a transition of the model", Status: Undecidable,
		Why: "a phone's states are inside it; the wire shows what it sends"}
}

// i10: a BYE goes first through the server its call was set up through,
// unless that server failed meanwhile.
func (a *Analysis) i10() Verdict {
	v := &verdict{Verdict: Verdict{ID: "I10", Title: "an in-dialog request goes through its dialog's server"}}
	for _, l := range a.Lines {
		seen := map[string]bool{}
		for _, t := range l.Txns {
			if t.Method != "BYE" || seen[t.CallID] {
				continue
			}
			seen[t.CallID] = true
			d, setUp := a.dialogServer(l, t.CallID)
			if d < 0 {
				continue // set up before the capture, or by the far end
			}
			v.judged++
			if t.Server == d {
				continue
			}
			// The dialog's server is unavailable when the BYE is sent: the
			// last it said of itself since the call was set up (a
			// transaction's outcome, or an unavailable code in any answer:
			// a 503 to a retransmitted INVITE after its 2xx, say) is a
			// failure, or its Retry-After runs. A server that failed once
			// and answered since is available again.
			var last time.Time
			down := false
			note := func(at time.Time, failure bool) {
				if !at.Before(setUp) && !at.After(t.start()) && !at.Before(last) {
					last, down = at, failure
				}
			}
			for _, u := range l.Txns {
				if u.Server != d || u.Method == "ACK" {
					continue
				}
				switch o := a.outcome(u); o.Kind {
				case "ok", "challenged", "again", "rejected":
					note(o.At, false)
				case "unavailable", "timeout":
					note(o.At, true)
				}
				for _, m := range u.Answers {
					if slices.Contains(a.UnavailableCodes, m.Code) {
						note(m.At, true)
					}
				}
			}
			down = down || a.held(l, d, t.start(), false)
			if !down {
				v.violated(a, l, t.start(), []int{t.Sends[0].Frame}, "the BYE of a call set up through server %d went to server %d", d+1, t.Server+1)
			}
		}
	}
	return v.done("calls ended by the phone", "the phone ended no call it had set up in the capture")
}

// i11: at most the rate bound of transactions on one server in any minute.
func (a *Analysis) i11() Verdict {
	v := &verdict{Verdict: Verdict{ID: "I11", Title: "no storm: transactions a minute within the bound"}}
	b := a.bounds()
	for _, l := range a.Lines {
		var users []time.Time
		for _, t := range l.Txns {
			if (t.Method == "INVITE" || t.Method == "MESSAGE") && !t.InDialog {
				users = append(users, t.start())
			}
		}
		for s := range a.Servers {
			var starts []*Txn
			for _, t := range l.Txns {
				if t.Server == s && t.Method != "ACK" && t.Method != "CANCEL" {
					starts = append(starts, t)
				}
			}
			v.judged++
			lo, u0, u1 := 0, 0, 0
			for hi, t := range starts {
				for starts[lo].start().Add(time.Minute).Before(t.start()) || starts[lo].start().Add(time.Minute).Equal(t.start()) {
					lo++
				}
				for u0 < len(users) && !users[u0].After(t.start().Add(-time.Minute)) {
					u0++
				}
				for u1 < len(users) && !users[u1].After(t.start()) {
					u1++
				}
				u := max(0, u1-u0) // the user's requests in the minute up to t
				if n := hi - lo + 1; n > b.RateBound(u) {
					v.violated(a, l, t.start(), []int{starts[lo].Sends[0].Frame, t.Sends[0].Frame},
						"%d transactions on server %d in the minute up to %v; the bound is %d", n, s+1, t.start().Sub(a.Begin).Round(time.Millisecond), b.RateBound(u))
					break
				}
			}
		}
	}
	return v.done("lines and servers", "the phone sent nothing to the servers")
}

func (a *Analysis) i12() Verdict {
	return Verdict{ID: "I12", Title: "leaves a server only for a reason", Status: Undecidable,
		Why: "a phone may leave a working server because its user asked; the wire does not say who asked"}
}
