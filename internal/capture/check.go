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

// i1: on a backup, the phone probes the primary at least every Failback
// Interval + 64*T1 (with slack), and a probe the primary accepts moves the
// line there: its new requests go to the primary.
func (a *Analysis) i1() Verdict {
	v := &verdict{Verdict: Verdict{ID: "I1", Title: "fails back to the primary when it recovers"}}
	if !a.FailbackEnabled {
		return v.undecidable("failback is off in the phone's settings: nothing to fail back")
	}
	if a.Concurrent {
		return v.undecidable("concurrent registration keeps a binding on every server; failback moves requests, not registrations")
	}
	bound := a.FailbackInterval + 64*a.T1 + a.Slack
	for _, l := range a.Lines {
		for _, span := range a.onBackup(l) {
			// Probes within the span, and the gaps between them.
			last, lastFrame := span.from, span.frame
			for _, t := range l.Txns {
				if !t.Probe || t.start().Before(span.from) || !t.start().Before(span.to) {
					continue
				}
				v.judged++
				if gap := t.start().Sub(last); gap > bound {
					v.violated(a, l, last.Add(bound), []int{lastFrame, t.Sends[0].Frame},
						"on a backup with no probe of the primary for %v (bound %v)", gap.Round(time.Millisecond), bound)
				}
				last, lastFrame = t.start(), t.Sends[0].Frame
				if o := a.outcome(t); o.Kind == "ok" {
					// The primary took the line: its new requests go there.
					for _, u := range l.Txns {
						if (u.Method == "INVITE" || u.Method == "MESSAGE") && !u.InDialog && u.start().After(o.At.Add(a.Slack)) &&
							u.Server != 0 && l.liveAt(0, u.start()) {
							v.violated(a, l, u.start(), []int{o.Frame, u.Sends[0].Frame},
								"the primary accepted the probe, and a new %s still went to server %d", u.Method, u.Server+1)
							break
						}
					}
				}
			}
			switch gap := span.to.Sub(last); {
			case gap > bound:
				v.judged++
				v.violated(a, l, last.Add(bound), []int{lastFrame}, "on a backup with no probe of the primary for %v (bound %v)",
					gap.Round(time.Millisecond), bound)
			case span.open:
				v.unknown++
			}
		}
	}
	return v.done("probing periods on a backup", fmt.Sprintf("the phone is never registered on a backup for a whole Failback Interval + 64*T1 (%v) in the capture", bound))
}

// span is a time the line was on a backup.
type span struct {
	from, to time.Time
	frame    int  // the 2xx it began with
	open     bool // it lasts to the end of the capture
}

// onBackup returns the spans in which the line is on a backup.
func (a *Analysis) onBackup(l *LineTrace) []span {
	var moments []time.Time
	for _, b := range l.Bindings {
		moments = append(moments, b.From, b.Until)
		if b.Removed {
			moments = append(moments, b.RemovedBefore)
		}
	}
	moments = append(moments, a.End)
	slices.SortFunc(moments, func(x, y time.Time) int { return x.Compare(y) })
	var out []span
	var cur *span
	for _, t := range moments {
		if t.After(a.End) {
			t = a.End
		}
		frame := 0
		for _, b := range l.Bindings {
			if b.Server > 0 && b.live(t) {
				frame = b.Frame
			}
		}
		on := l.current(t) > 0 && t.Before(a.End)
		switch {
		case on && cur == nil:
			cur = &span{from: t, frame: frame}
		case !on && cur != nil:
			cur.to, cur.open = t, !t.Before(a.End)
			out = append(out, *cur)
			cur = nil
		}
	}
	return out
}

// i2: a request that finds the line's server unavailable is followed,
// within the slack, by a REGISTER to the next server: the phone fails over
// instead of retrying the same server.
func (a *Analysis) i2() Verdict {
	v := &verdict{Verdict: Verdict{ID: "I2", Title: "fails over to the next server within the budget"}}
	if a.Concurrent {
		return v.undecidable("concurrent registration registers on every server at once: there is no failover of the registration")
	}
	for _, l := range a.Lines {
		for i, t := range l.Txns {
			// The registration's own requests, and any other the line sent
			// to the server it is registered on (a keep-alive, a call's),
			// that found the server unavailable: the line fails over (R1,
			// R5-R8). A probe's failure keeps it where it is (R11).
			switch {
			case t.Probe || t.Server == len(a.Servers)-1 || t.Method == "ACK" || t.Method == "CANCEL":
				continue
			case t.Method == "REGISTER" && t.Expires == 0:
				continue // a de-registration fails over nothing
			case t.Method != "REGISTER" && t.Method != "SYN" && !l.liveAt(t.Server, t.start()):
				continue
			}
			o := a.outcome(t)
			if !failed(o) {
				continue
			}
			shown := frames(t.Sends) // the request, and the answer or fault that failed it
			if o.Frame > 0 {
				shown = append(shown, o.Frame)
			}
			var next *Txn
			for _, u := range l.Txns[i+1:] {
				if u.Method == "REGISTER" && !u.Probe && u.Expires != 0 && !u.start().Before(o.At) {
					next = u
					break
				}
			}
			deadline := o.At.Add(a.Slack)
			switch {
			case next == nil && deadline.After(a.End):
				v.unknown++
			case next == nil:
				v.judged++
				v.violated(a, l, deadline, shown,
					"server %d was unavailable (%s) and no REGISTER to server %d followed", t.Server+1, o.What, t.Server+2)
			case next.Server == t.Server:
				v.judged++
				v.violated(a, l, next.start(), append(shown, next.Sends[0].Frame),
					"server %d was unavailable (%s); the phone registered there again instead of failing over", t.Server+1, o.What)
			case next.Server != t.Server+1 && !a.heldBetween(l, t.Server+1, next.Server, next.start()):
				v.judged++
				v.violated(a, l, next.start(), append(shown, next.Sends[0].Frame),
					"server %d was unavailable (%s); the next REGISTER went to server %d, not %d", t.Server+1, o.What, next.Server+1, t.Server+2)
			case next.start().After(deadline):
				v.judged++
				v.violated(a, l, next.start(), append(shown, next.Sends[0].Frame),
					"server %d was unavailable (%s) at %v; the REGISTER to server %d came %v later (slack %v)", t.Server+1, o.What,
					o.At.Sub(a.Begin).Round(time.Millisecond), next.Server+1, next.start().Sub(o.At).Round(time.Millisecond), a.Slack)
			default:
				v.judged++
			}
		}
	}
	return v.done("requests that found their server unavailable", "no request to a non-last server the phone used found it unavailable in the capture")
}

// held reports whether server k's Retry-After ran at t: the phone may pass
// it over then (R1).
func (a *Analysis) held(l *LineTrace, k int, t time.Time) bool {
	return slices.ContainsFunc(l.Txns, func(u *Txn) bool {
		return u.Server == k && u.Final != nil && u.Final.RetryAfter > 0 && !u.Final.At.After(t) &&
			t.Before(u.Final.At.Add(time.Duration(u.Final.RetryAfter)*time.Second))
	})
}

// heldBetween reports whether every server from lo up to hi (excluded)
// was held off at t.
func (a *Analysis) heldBetween(l *LineTrace, lo, hi int, t time.Time) bool {
	if hi < lo {
		return false
	}
	for k := lo; k < hi; k++ {
		if !a.held(l, k, t) {
			return false
		}
	}
	return true
}

// i3: a REGISTER of a new round to server k > 0 comes after server k-1
// failed in that round, or while k-1's Retry-After runs: no server is
// skipped, and rounds begin at the primary.
func (a *Analysis) i3() Verdict {
	v := &verdict{Verdict: Verdict{ID: "I3", Title: "tries the servers in priority order, skipping none"}}
	if a.Concurrent {
		return v.undecidable("concurrent registration registers on every server at once")
	}
	for _, l := range a.Lines {
		for i, t := range l.Txns {
			if t.Method != "REGISTER" || t.Expires == 0 || t.Server == 0 || l.liveAt(t.Server, t.start()) || t.InDialog {
				continue
			}
			// A resend with credentials, a 423's or a stale nonce's retry:
			// the same server was just asked.
			if slices.ContainsFunc(l.Txns[:i], func(u *Txn) bool {
				o := a.outcome(u)
				return u.Server == t.Server && u.Method == "REGISTER" && (o.Kind == "challenged" || o.Kind == "rejected") &&
					t.start().Sub(o.At) < a.Slack+a.T1
			}) {
				continue
			}
			prev := t.Server - 1
			round := a.bounds().RoundBound()
			tried := slices.ContainsFunc(l.Txns[:i], func(u *Txn) bool {
				o := a.outcome(u)
				return u.Server == prev && failed(o) && !o.At.After(t.start().Add(a.Slack)) && t.start().Sub(o.At) <= round
			})
			switch {
			case tried || a.held(l, prev, t.start()):
				v.judged++
			case !a.FromBoot && t.start().Sub(a.Begin) < round && !slices.ContainsFunc(l.Txns[:i], func(u *Txn) bool { return u.Method == "REGISTER" }):
				v.unknown++ // the phone may have tried before the capture began
			default:
				v.judged++
				v.violated(a, l, t.start(), []int{t.Sends[0].Frame},
					"a REGISTER to server %d without server %d failing first in the round", t.Server+1, prev+1)
			}
		}
	}
	return v.done("REGISTERs to a lower-priority server", "no REGISTER of a new round went to a lower-priority server")
}

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

// i5: a new INVITE or MESSAGE goes only to a server that holds a binding
// of the line when it is first sent; a BYE only to one that did when its
// call was set up or holds one now.
func (a *Analysis) i5() Verdict {
	v := &verdict{Verdict: Verdict{ID: "I5", Title: "sends INVITE and BYE only to a server it is registered on"}}
	for _, l := range a.Lines {
		for _, t := range l.Txns {
			if t.Method != "INVITE" && t.Method != "MESSAGE" && t.Method != "BYE" || t.InDialog && t.Method != "BYE" {
				continue
			}
			v.judged++
			if l.liveAt(t.Server, t.start()) {
				continue
			}
			if t.Method == "BYE" && a.dialogServer(l, t.CallID) == t.Server {
				continue // I10's to judge: the dialog's server
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

// dialogServer is the server a call's dialog was set up through: the one
// its INVITE got a 2xx from; -1 if none.
func (a *Analysis) dialogServer(l *LineTrace, callID string) int {
	if l.dialogs == nil {
		l.dialogs = map[string]int{}
		for _, t := range l.Txns {
			if _, seen := l.dialogs[t.CallID]; !seen && t.Method == "INVITE" && !t.InDialog && t.Final != nil && t.Final.Code < 300 {
				l.dialogs[t.CallID] = t.Server
			}
		}
	}
	if s, ok := l.dialogs[callID]; ok {
		return s
	}
	return -1
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
			if !t.Probe {
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
					end = prev.start().Add(64 * a.T1)
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
			if b.Refreshed || b.Removed && b.RemovedBefore.Before(b.Until) {
				v.judged++
				continue
			}
			if b.Until.After(a.End) {
				v.unknown++
				continue
			}
			// Moved on: a later binding elsewhere, or its server failed.
			moved := slices.ContainsFunc(l.Bindings, func(c *Binding) bool { return c.Server != b.Server && c.From.After(b.From) })
			down := slices.ContainsFunc(l.Txns, func(t *Txn) bool {
				return t.Server == b.Server && t.start().After(b.From) && !t.start().After(b.Until) && failed(a.outcome(t))
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
			d := a.dialogServer(l, t.CallID)
			if d < 0 {
				continue // set up before the capture, or by the far end
			}
			v.judged++
			if t.Server == d {
				continue
			}
			down := slices.ContainsFunc(l.Txns, func(u *Txn) bool {
				return u.Server == d && !u.start().After(t.start()) && failed(a.outcome(u))
			})
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
