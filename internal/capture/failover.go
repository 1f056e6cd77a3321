package capture

// The failover checks, I1 to I3, and what they read of the phone's stays,
// holds and Retry-After: where it must go when a server fails, and when it
// must come back to the primary.

import (
	"fmt"
	"slices"
	"time"
)

// i1: on a backup, the phone probes the primary at least every Failback
// Interval + 64*T1 (with slack), or by the backup's next refresh in
// failback mode registration (R18), and a probe the primary accepts moves
// the line there: its new requests go to the primary. With failback_when
// idle the time counts only while no call of the line has a dialog, from
// the end of the last one.
func (a *Analysis) i1() Verdict {
	v := &verdict{Verdict: Verdict{ID: "I1", Title: "fails back to the primary when it recovers"}}
	switch {
	case !a.FailbackEnabled:
		return v.undecidable("failback is off in the phone's settings: nothing to fail back")
	case a.Concurrent:
		return v.undecidable("concurrent registration keeps a binding on every server; failback moves requests, not registrations")
	case a.FailbackMode == "new_requests":
		return v.undecidable("in failback mode new_requests a probe is owed only to a request that finds none out, which the wire does not show")
	case a.FailbackMode == "dns_ttl":
		return v.undecidable("in failback mode dns_ttl the probe is due when the primary's DNS records expire, which the capture does not carry")
	}
	for _, l := range a.Lines {
		holds := a.holds(l)
		// No probe goes to the primary while its Retry-After runs (R1): the
		// wait counts from its end. Any answer with one holds it, the final
		// one or one to a retransmission after it, which may come later.
		for _, u := range l.Txns {
			for _, m := range u.Answers {
				if u.Server == 0 && m.Code >= 300 && m.RetryAfter > 0 {
					holds = append(holds, hold{m.At, m.At.Add(time.Duration(m.RetryAfter) * time.Second), -1})
				}
			}
		}
		// since is when the wait for a probe began, given it began at
		// from: after the last call that held the line, or Retry-After
		// that held the primary off, up to t ended.
		since := func(from, t time.Time) time.Time {
			for _, h := range holds {
				if h.to.After(from) && h.from.Before(t) {
					from = maxTime(from, h.to)
				}
			}
			return from
		}
		held := func(t time.Time) bool {
			return slices.ContainsFunc(holds, func(h hold) bool { return !t.Before(h.from) && t.Before(h.to) })
		}
		for _, span := range a.onBackup(l) {
			bound := a.FailbackInterval + 64*a.T1 + a.Slack
			if a.FailbackMode == "registration" {
				// The probe comes with the backup's refresh: the longest
				// grant the backup gave in the span bounds the wait.
				granted := max(span.granted, minGrant)
				for _, b := range l.Bindings {
					if b.Server > 0 && !b.Late && !b.From.Before(span.from) && b.From.Before(span.to) {
						granted = max(granted, b.Granted)
					}
				}
				// A refresh still out holds the next one back as a probe
				// does: each may take 64*T1.
				bound = granted + 2*64*a.T1 + a.Slack
			}
			// Probes within the span, and the gaps between them.
			last, lastFrame := span.from, span.frame
			for _, t := range l.Txns {
				if !t.Probe || t.start().Before(span.from) || !t.start().Before(span.to) {
					continue
				}
				v.judged++
				from := since(last, t.start())
				if gap := t.start().Sub(from); gap > bound {
					v.violated(a, l, from.Add(bound), []int{lastFrame, t.Sends[0].Frame},
						"on a backup with no probe of the primary for %v (bound %v)", gap.Round(time.Millisecond), bound)
				}
				last, lastFrame = t.start(), t.Sends[0].Frame
				// The primary took the line, unless a call held it then
				// (failback_when idle keeps the backup to the call's end):
				// its new requests go there, for as long as it stays there.
				if o := a.outcome(t); o.Kind == "ok" && !(a.FailbackWhenIdle && held(o.At)) {
					for _, u := range l.Txns {
						if !u.start().After(o.At.Add(a.Slack)) {
							continue
						}
						if l.current(u.start()) != 0 {
							break // the line left the primary again
						}
						if a.SignalUnregistered && u.Server != 0 && a.registering(l, u.Server, u.start()) {
							break // it is registering elsewhere, and only_signal_with_registered 0 sends there (R23)
						}
						if (u.Method == "INVITE" || u.Method == "MESSAGE") && !u.InDialog && u.Server != 0 && !l.goesOn(u) {
							v.violated(a, l, u.start(), []int{o.Frame, u.Sends[0].Frame},
								"the primary accepted the probe, and a new %s still went to server %d", u.Method, u.Server+1)
							break
						}
					}
				}
			}
			from := since(last, span.to)
			switch gap := span.to.Sub(from); {
			case a.FailbackWhenIdle && held(span.to) && span.open:
				v.unknown++ // a call holds the line to the end of the capture
			case gap > bound:
				v.judged++
				v.violated(a, l, from.Add(bound), []int{lastFrame}, "on a backup with no probe of the primary for %v (bound %v)",
					gap.Round(time.Millisecond), bound)
			case span.open:
				v.unknown++
			}
		}
	}
	return v.done("probing periods on a backup", fmt.Sprintf("the phone is never registered on a backup for a whole Failback Interval + 64*T1 (%v) in the capture",
		a.FailbackInterval+64*a.T1+a.Slack))
}

// hold is a time a call of the line had a dialog, or was being set up.
type hold struct {
	from, to time.Time
	via      int // a call's: the server its INVITE went through, -1 for one made to the phone
}

// probeTaken reports whether, between from and to, the phone took the
// binding a failback probe won on another server than k while calls held
// the line (failback_when idle): the last of those calls ended then, and
// the binding still lived.
func (a *Analysis) probeTaken(l *LineTrace, k int, from, to time.Time) bool {
	holds := a.holds(l)
	return slices.ContainsFunc(l.Bindings, func(b *Binding) bool {
		return b.probe && b.Late && b.Server != k && slices.ContainsFunc(holds, func(h hold) bool {
			ended := !h.to.Before(from) && !h.to.After(to) && b.live(h.to)
			return ended && !b.From.Before(h.from) && b.From.Before(h.to) && !slices.ContainsFunc(holds, func(g hold) bool {
				return g.from.Before(h.to) && g.to.After(h.to) // another call goes on
			})
		})
	})
}

// holds are the times calls held the line (R18's failback_when idle), with
// failback_when idle; none with failback_when always. A call the phone
// made holds from its INVITE until its final answer refused it, or until
// its BYE ended, either side's; one made to the phone, from the INVITE that
// reached it until a BYE of it. What the capture does not end holds to its
// end: the check errs on the phone's side.
func (a *Analysis) holds(l *LineTrace) []hold {
	if !a.FailbackWhenIdle {
		return nil
	}
	if l.holds != nil {
		return *l.holds
	}
	byes := map[string][]*Txn{} // Call-ID -> the phone's BYEs, by first transmission
	for _, t := range l.Txns {
		if t.Method == "BYE" {
			byes[t.CallID] = append(byes[t.CallID], t)
		}
	}
	end := func(callID string, from time.Time) time.Time {
		to := a.End
		for _, t := range byes[callID] {
			if !t.start().Before(from) {
				if o := a.outcome(t); o.Kind != "pending" && o.Kind != "sent" {
					to = o.At
				}
				break
			}
		}
		if far, ok := a.farByes[callID]; ok && far.After(from) && far.Before(to) {
			to = far
		}
		return to
	}
	out := []hold{}
	for _, t := range l.Txns {
		if t.Method != "INVITE" || t.InDialog {
			continue
		}
		if t.Final != nil && t.Final.Code >= 300 {
			out = append(out, hold{t.start(), t.Final.At, t.Server})
			continue
		}
		if t.Final == nil {
			// An INVITE nobody answered has no dialog, and holds nothing;
			// one that rang and was given up holds until then.
			if len(t.Answers) == 0 {
				continue
			}
			if o := a.outcome(t); o.Kind != "pending" {
				out = append(out, hold{t.start(), o.At, t.Server})
				continue
			}
		}
		out = append(out, hold{t.start(), end(t.CallID, t.start()), t.Server})
	}
	for callID, at := range a.incoming { // the capture does not say to which of the phone's lines
		out = append(out, hold{at, end(callID, at), -1})
	}
	l.holds = &out
	return out
}

// span is a time the line was on a backup.
type span struct {
	from, to time.Time
	granted  time.Duration // what the backup granted at the start
	frame    int           // the 2xx it began with
	open     bool          // it lasts to the end of the capture
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
	for _, t := range l.Txns {
		if t.Method == "REGISTER" || t.Method == "SYN" {
			o := a.outcome(t)
			moments = append(moments, t.start(), o.At, o.At.Add(a.Slack)) // the line may leave
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
		frame, granted := 0, time.Duration(0)
		for _, b := range l.Bindings {
			if b.Server > 0 && b.live(t) {
				frame, granted = b.Frame, b.Granted
			}
		}
		on := l.current(t) > 0 && !a.left(l, t) && t.Before(a.End)
		switch {
		case on && cur == nil:
			cur = &span{from: t, frame: frame, granted: granted}
		case !on && cur != nil:
			cur.to, cur.open = t, !t.Before(a.End)
			out = append(out, *cur)
			cur = nil
		}
	}
	return out
}

// i2: a request that finds the line's server unavailable is followed,
// within the slack, by a REGISTER to another server: the next one, or the
// primary, where a line that lost a backup begins its round again (R13).
// The request counts when it went to the server the line was on and the
// line was still there when it failed: a failure while the phone is
// already elsewhere is no reason to move again.
func (a *Analysis) i2() Verdict {
	v := &verdict{Verdict: Verdict{ID: "I2", Title: "fails over to the next server within the budget"}}
	if a.Concurrent {
		return v.undecidable("concurrent registration registers on every server at once: there is no failover of the registration")
	}
	for _, l := range a.Lines {
		for _, t := range l.Txns {
			// The registration's own requests, and any other the line sent
			// to the server it is registered on (a keep-alive, a call's),
			// that found the server unavailable: the line fails over (R1,
			// R5-R8). A probe's failure keeps it where it is (R11).
			switch {
			case t.Probe || t.Method == "ACK" || t.Method == "CANCEL":
				continue
			case t.Server == len(a.Servers)-1 && t.Server == 0:
				continue // a line of one server has nowhere to go
			case t.Method == "REGISTER" && t.Expires == 0:
				continue // a de-registration fails over nothing
			}
			o := a.outcome(t)
			if !failed(o) {
				continue
			}
			// A user who hangs up before any answer drops the INVITE (RFC
			// 3261 9.1 allows no CANCEL yet), and its late failure moves
			// nothing; the wire does not show the hang-up.
			if t.Method == "INVITE" {
				v.unknown++
				continue
			}
			// A request that has had its try on every server fails without
			// moving the line (R9): here, when its earlier tries failed as
			// many times as there are other servers.
			if t.Method != "REGISTER" && t.Method != "SYN" {
				earlier := func(u *Txn) bool {
					return u != t && u.CallID == t.CallID && u.Method == t.Method && u.start().Before(t.start()) && failed(a.outcome(u))
				}
				tries := 0
				for _, u := range l.Txns {
					if earlier(u) {
						tries++
					}
					// Over TCP a try at a server that is down is a refused
					// connection, with no Call-ID to tell whose: one just
					// before this try, or one opened at once when an
					// earlier try failed (the request may then have waited
					// for the line before this one).
					if u.Method == "SYN" && u.Server != t.Server && u.Sends[0].Frame < t.Sends[0].Frame &&
						(t.start().Sub(a.outcome(u).At) <= a.Slack || slices.ContainsFunc(l.Txns, func(w *Txn) bool {
							d := u.start().Sub(a.outcome(w).At)
							return earlier(w) && w.Server != u.Server && d >= 0 && d <= a.Slack
						})) {
						tries++
					}
				}
				if tries >= len(a.Servers)-1 {
					v.unknown++
					continue
				}
			}
			switch {
			case t.Method == "SYN" && (l.current(t.start()) >= 0 || a.burst(l, t) || !a.carriedRegister(l, t)):
				// A refused connection is judged only while the phone is
				// registered nowhere and sends a REGISTER next: what else it
				// was for (a probe, a call's request, a refresh or a round)
				// the wire does not say.
				continue
			case t.Method != "REGISTER" && t.Method != "SYN" && !(a.settled(l, t.Server, t.start()) && a.settled(l, t.Server, o.At.Add(-time.Nanosecond))):
				// (just before its failure: that failure is the one judged)
				continue
			case t.Method != "REGISTER" && t.Method != "SYN" && slices.ContainsFunc(l.Txns, func(u *Txn) bool {
				at := a.outcome(u).At
				return u.Server == t.Server && at.After(l.newest(t.start()).From) && !at.After(o.At.Add(a.Slack)) && a.refusedBy(l, u)
			}):
				// The server refused the line (its credentials, say) while
				// the request was out or as it failed: the line waits for its
				// back-off (I9) and fails over nowhere.
				continue
			}
			// A de-registration since the request was sent: the user took
			// the line down, and it goes nowhere until asked again.
			if slices.ContainsFunc(l.Txns, func(u *Txn) bool {
				return u.Method == "REGISTER" && u.Expires == 0 && !u.start().Before(t.start()) && !u.start().After(o.At.Add(a.Slack))
			}) {
				continue
			}
			// Where the phone may go next (R1, R5, R13): the next server whose
			// Retry-After is not running, or, from a backup, a new round from
			// the primary (R13; the wire does not always tell a round's step
			// from a refresh). Where none is left, the round ends at once and
			// the next waits for the back-off (R9).
			settled := a.settled(l, t.Server, t.start()) && !a.roundStep(l, t)
			if t.Server == len(a.Servers)-1 && !settled {
				continue // a round that ends on the last server waits its back-off (R9)
			}
			// Whether a 2xx ends a server's Retry-After is the phone's own
			// choice: both readings are allowed.
			want := func(at time.Time) []int {
				var out []int
				for _, strict := range []bool{true, false} {
					if k := a.firstFree(l, t.Server+1, at, strict); k >= 0 {
						out = append(out, k)
					}
					if k := a.firstFree(l, 0, at, strict); t.Server > 0 && k >= 0 && k != t.Server {
						out = append(out, k)
					}
				}
				if len(out) == 0 {
					// The only server free is this one: a new round from
					// the primary passes the held-off ones and lands here
					// again (R1).
					out = append(out, t.Server)
				}
				return out
			}
			if a.firstFree(l, t.Server+1, o.At, false) < 0 && (!settled || t.Server == 0 || a.firstFree(l, 0, o.At, false) < 0) {
				// Every server left is held off: the round ends here and the
				// next waits for the back-off (R1, R9).
				v.judged++
				continue
			}
			if a.probeTaken(l, t.Server, o.At, o.At.Add(a.Slack)) {
				// The call that kept the phone off the probe's binding ended
				// with this failure: the phone is registered there with no
				// REGISTER more (the model's adopt_probe, R18).
				v.judged++
				continue
			}
			shown := frames(t.Sends) // the request, and the answer or fault that failed it
			if o.Frame > 0 {
				shown = append(shown, o.Frame)
			}
			// The next REGISTER: the first the capture holds after t's
			// first transmission. One to the primary from a backup may be a
			// probe or a new round: the wire does not tell them apart, and
			// either leaves. One to the same server before the failure was
			// known (a refresh while a keep-alive waits) is no reaction to
			// it, nor a connection opened for a keep-alive. One to the
			// same server at the very instant of the failure may be either
			// (the wire does not order what happens at one instant): both
			// readings are judged, and the phone held I2 if it held in one.
			nextAfter := func(sameInstantBefore bool) *Txn {
				var next *Txn
				for _, u := range l.Txns {
					sameBefore := u.Server == t.Server && (u.start().Before(o.At) || sameInstantBefore && u.start().Equal(o.At))
					// Over TCP a refused connection is all the wire shows of
					// a REGISTER to a server that is down.
					if u.Sends[0].Frame > t.Sends[0].Frame && (u.Method == "REGISTER" && u.Expires != 0 || u.Method == "SYN" && !a.burst(l, u)) && !sameBefore &&
						(next == nil || u.Sends[0].Frame < next.Sends[0].Frame) {
						next = u
					}
				}
				return next
			}
			deadline := o.At.Add(a.Slack)
			if t.Server == len(a.Servers)-1 {
				// The wire does not always tell a refresh on the last server
				// from a round's last step, after which the next round waits
				// its back-off (R9): the longest back-off is allowed.
				deadline = deadline.Add(a.bounds().BackoffMax)
			}
			type finding struct {
				at     time.Time
				frames []int
				msg    string
			}
			// judge says whether the failover to next held (nil, true),
			// cannot be judged (nil, false), or broke I2.
			judge := func(next *Txn) (*finding, bool) {
				switch {
				case next == nil && deadline.After(a.End):
					return nil, false
				case next == nil:
					return &finding{deadline, shown, fmt.Sprintf("server %d was unavailable (%s) and no REGISTER to server %d followed", t.Server+1, o.What, want(o.At)[0]+1)}, true
				case next.Method == "SYN" && !a.carriedRegister(l, next) && (next.Server != t.Server || next.start().After(deadline)):
					// A refused connection the round did not go on from at
					// once may have carried anything: a call's ACK or BYE, a
					// keep-alive. The wire does not show the REGISTER it
					// would take to judge.
					return nil, false
				case next.Server == t.Server && t.Server > 0 && a.firstFree(l, 0, next.start(), false) == t.Server:
					return nil, true // a new round passed every server before it: their Retry-After runs (R1)
				case next.Server == t.Server && t.Method == "SYN":
					// A refused connection may have carried anything (a
					// keep-alive, a call's ACK or BYE, a MESSAGE), and the
					// REGISTER to the same server after it be a new round's
					// (R9): had it carried a REGISTER, the round would have
					// gone on elsewhere. The wire does not say.
					return nil, false
				case next.Server == t.Server && a.roundStep(l, next):
					// A new round from the primary (R13) tried the servers
					// before it, which failed at once: the REGISTER here is
					// the round's next step, not the phone staying put.
					return nil, true
				case next.Server == t.Server && a.otherRegistrar(l, t, next):
					// Behind outbound proxies, another registrar through the
					// same proxy: the next registrar, or a new round's first
					// (R13, R22).
					return nil, true
				case next.Server == t.Server:
					return &finding{next.start(), append(shown, next.Sends[0].Frame),
						fmt.Sprintf("server %d was unavailable (%s); the phone registered there again instead of failing over", t.Server+1, o.What)}, true
				case !slices.Contains(want(o.At), next.Server) && !slices.Contains(want(next.start()), next.Server):
					return &finding{next.start(), append(shown, next.Sends[0].Frame),
						fmt.Sprintf("server %d was unavailable (%s); the next REGISTER went to server %d, not %d", t.Server+1, o.What, next.Server+1, want(o.At)[0]+1)}, true
				case next.start().After(deadline):
					return &finding{next.start(), append(shown, next.Sends[0].Frame),
						fmt.Sprintf("server %d was unavailable (%s) at %v; the REGISTER to server %d came %v later (bound %v)", t.Server+1, o.What,
							o.At.Sub(a.Begin).Round(time.Millisecond), next.Server+1, next.start().Sub(o.At).Round(time.Millisecond), deadline.Sub(o.At))}, true
				}
				return nil, true
			}
			f, judged := judge(nextAfter(false))
			if f != nil {
				if g, ok := judge(nextAfter(true)); g == nil {
					f, judged = nil, ok
				}
			}
			switch {
			case !judged:
				v.unknown++
			case f != nil:
				v.judged++
				v.violated(a, l, f.at, f.frames, "%s", f.msg)
			default:
				v.judged++
			}
		}
	}
	return v.done("requests that found their server unavailable", "no request to a server the phone used found it unavailable in the capture")
}

// carriedRegister reports whether a refused connection was, as far as the
// wire shows, for a REGISTER: the phone's next request after it is one, at
// once (a round goes on to the next server).
// One for a call's BYE is followed by that BYE through another server.
func (a *Analysis) carriedRegister(l *LineTrace, syn *Txn) bool {
	var next *Txn
	for _, u := range l.Txns {
		if u != syn && u.Method != "SYN" && u.Method != "ACK" && !u.start().Before(syn.start()) && (next == nil || u.start().Before(next.start())) {
			next = u
		}
	}
	// While a REGISTER to another server waits for its outcome, the round
	// is there: the refused connection carried something else (a call's
	// BYE through its dialog's server, say).
	busy := slices.ContainsFunc(l.Txns, func(u *Txn) bool {
		return u.Method == "REGISTER" && u.Expires != 0 && u.Server != syn.Server && u.start().Before(syn.start()) && a.outstanding(u, syn.start()) &&
			!(u.Final != nil && u.Final.At.Equal(syn.start()))
	})
	return !busy && next != nil && next.Method == "REGISTER" && !next.start().After(a.outcome(syn).At.Add(a.Slack))
}

// burstGap is how close together a phone sends the connections of one
// burst of flow keep-alives: one loop over its servers.
const burstGap = 10 * time.Millisecond

// burst reports whether a refused connection went out together with one to
// another server (within burstGap, each before the other was refused): a
// round of successive registration tries one server at a time, so these
// were the phone's flow keep-alives to every server while all had failed
// (R9). A round's connection sent while an earlier keep-alive's was still
// being refused is no burst.
func (a *Analysis) burst(l *LineTrace, syn *Txn) bool {
	return slices.ContainsFunc(l.Txns, func(u *Txn) bool {
		return u.Method == "SYN" && u.Server != syn.Server && u.start().Sub(syn.start()).Abs() <= burstGap &&
			u.start().Before(a.outcome(syn).At) && syn.start().Before(a.outcome(u).At)
	})
}

// roundStep reports whether t went to its server as a step of a round: a
// try of a server before it failed just then, and the phone went on at
// once (a REGISTER on the server it is on is a refresh otherwise).
func (a *Analysis) roundStep(l *LineTrace, t *Txn) bool {
	return t.Method == "REGISTER" && t.Server > 0 && slices.ContainsFunc(l.Txns, func(u *Txn) bool {
		// A probe's failure starts no round: a REGISTER of another Call-ID
		// to the primary from a backup. A refused connection may be a
		// probe's or a round's: taken as a round's, the check errs on the
		// phone's side.
		if u.Server >= t.Server || u.Method != "REGISTER" && u.Method != "SYN" || u.Method == "REGISTER" && u.Probe && u.CallID != t.CallID {
			return false
		}
		o := a.outcome(u)
		return (failed(o) || o.Kind == "rejected") && !o.At.After(t.start()) && t.start().Sub(o.At) <= a.Slack
	})
}

// held reports whether server k's Retry-After may have run at t: the phone
// may pass it over then (R1). With strict, a 2xx from the server since its
// 503 ends the hold (the server is back, as the agent takes it); without,
// the hold runs its whole time (as a phone that keeps it may).
func (a *Analysis) held(l *LineTrace, k int, t time.Time, strict bool) bool {
	return slices.ContainsFunc(l.Txns, func(u *Txn) bool {
		// Any answer of the server's with a Retry-After holds it: the final
		// one, or one to a retransmission after it (a 503 after a 2xx).
		return u.Server == k && slices.ContainsFunc(u.Answers, func(m *Message) bool {
			if m.Code < 300 || m.RetryAfter <= 0 || m.At.After(t) || !t.Before(m.At.Add(time.Duration(m.RetryAfter)*time.Second)) {
				return false
			}
			// A 2xx from the server since says it is back.
			return !strict || !slices.ContainsFunc(l.Txns, func(w *Txn) bool {
				return w.Server == k && w.Final != nil && w.Final.Code < 300 && w.Final.Frame > m.Frame && !w.Final.At.After(t)
			})
		})
	})
}

// firstFree is the first server from k on that the phone may try at t: not
// held off (held, strict or not); -1 when all are.
func (a *Analysis) firstFree(l *LineTrace, k int, t time.Time, strict bool) int {
	for ; k < len(a.Servers); k++ {
		if !a.held(l, k, t, strict) {
			return k
		}
	}
	return -1
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
				return u.Server == t.Server && u.Method == "REGISTER" && (o.Kind == "challenged" || o.Kind == "again" || o.Kind == "rejected") &&
					t.start().Sub(o.At) < a.Slack+a.T1
			}) {
				continue
			}
			prev := t.Server - 1
			round := a.bounds().RoundBound()
			tried := slices.ContainsFunc(l.Txns[:i], func(u *Txn) bool {
				o := a.outcome(u)
				// An abandoned request may have been the one that failed:
				// over TCP the wire cannot tell (abandoned).
				// So may one answered at the very instant its budget ended:
				// the wire does not order what happens at one instant.
				if !failed(o) && o.At.Equal(u.start().Add(a.budget(u))) {
					o.Kind = "timeout"
				}
				// A REGISTER to the primary from a backup taken for a probe
				// may be a new round, under the primary's own budget.
				if u.Probe {
					round := *u
					round.Probe = false
					if r := a.outcome(&round); failed(r) && (!failed(o) || r.At.Before(o.At)) {
						o = r
					}
				}
				return u.Server == prev && (failed(o) || o.Kind == "abandoned") && !o.At.After(t.start().Add(a.Slack)) && t.start().Sub(o.At) <= round
			})
			// Over TCP the connection the phone was registered over may have
			// been reset: its flow is lost, and the server with it. And a
			// server that said it is unavailable in any answer (a 503 after
			// a 2xx to a retransmitted INVITE, say) may have been taken at
			// its word.
			reset := slices.ContainsFunc(a.resets[prev], func(at time.Time) bool {
				return !at.After(t.start().Add(a.Slack)) && t.start().Sub(at) <= round
			}) || slices.ContainsFunc(l.Txns[:i], func(u *Txn) bool {
				return u.Server == prev && slices.ContainsFunc(u.Answers, func(m *Message) bool {
					return slices.Contains(a.UnavailableCodes, m.Code) && !m.At.After(t.start().Add(a.Slack)) && t.start().Sub(m.At) <= round
				})
			})
			switch {
			case tried || reset || a.held(l, prev, t.start(), false):
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
