package lab

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/sipfailover/sipfailover/internal/capture"
	"github.com/sipfailover/sipfailover/internal/labserver"
)

// The verdicts of a case.
const (
	Held     = "held"
	Violated = "violated"
	NotRun   = "not run"
)

// Result is what one case measured and its verdict.
type Result struct {
	Case    Case
	Verdict string // Held, Violated or NotRun
	Why     string // what broke, or why it did not run
	// Failover is the time from the fault to the phone's registration on
	// the backup (or, for a call or hang-up, to its request through the
	// backup); Failback from the primary's mending to the phone's
	// registration there. 0: not measured.
	Failover, FailoverBound time.Duration
	Failback, FailbackBound time.Duration
	// From and To are the case's time in the run, from the lab's start.
	From, To time.Duration
	// Findings are the checker's, in the case's time.
	Findings []capture.Finding `json:",omitempty"`
}

// Report is a whole run: each case, and the checker's verdicts on the
// capture of all of it.
type Report struct {
	Results  []Result
	Capture  capture.Report
	Unusable string `json:",omitempty"` // why the run stopped: the phone never registered, say
}

// Violated says whether a case or an invariant was violated.
func (r *Report) Violated() bool {
	for _, c := range r.Results {
		if c.Verdict == Violated {
			return true
		}
	}
	return r.Capture.Violated()
}

// violated marks the case violated, for the first reason given, and says
// each.
func (r *Result) violated(say func(string, ...any), format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	if r.Verdict != Violated {
		r.Verdict, r.Why = Violated, msg
	}
	say("%s", msg)
}

// slack is what the lab waits beyond each bound: the phone's own slack,
// and the lab's polling.
func (l *Lab) slack() time.Duration { return 2*l.cfg.Phone.Slack + 2*poll }

// detect is how long the phone may take to find its server broken by its
// own timers: the refresh (within the registration the lab grants) or the
// OPTIONS keep-alive, whichever comes first.
func (l *Lab) detect() time.Duration {
	d := time.Duration(l.cfg.Expires) * time.Second
	if k := l.cfg.Phone.Keepalive; k > 0 && k < d {
		d = k
	}
	return d
}

// registerBound is how long the phone may take to register where it is
// sent: one budget, twice (a digest challenge restarts it).
func (l *Lab) registerBound(server int) time.Duration {
	return 2*l.cfg.Phone.Budget("REGISTER", server) + l.slack()
}

// Run plays the cases in order and judges them. A phone that never
// registers on the primary stops the run (Report.Unusable).
func (l *Lab) Run(ctx context.Context, plan []Case) (*Report, error) {
	rep := &Report{}
	first := l.detect() + l.registerBound(0) + l.cfg.WaitPhone
	for i, c := range plan {
		res := Result{Case: c, From: time.Since(l.start)}
		say := func(format string, a ...any) {
			fmt.Fprintf(l.cfg.Progress, "%5.1fs case %d/%d %s: %s\n", time.Since(l.start).Seconds(), i+1, len(plan), c.Name, fmt.Sprintf(format, a...))
		}
		// A case the lab cannot drive is reported, never passed.
		if (c.Trigger == Dial || c.Trigger == Hangup) && (l.cfg.Dial == "" || l.cfg.Hangup == "") {
			res.Verdict, res.Why = NotRun, "not run (no -dial and -hangup)"
			say("%s", res.Why)
			res.To = res.From
			rep.Results = append(rep.Results, res)
			continue
		}
		// Each case starts with the phone on the primary.
		bound := l.registerBound(0) + l.detect()
		if i == 0 {
			bound = first
		}
		say("waiting for the phone to be registered on the primary %s (bound %v)", l.cfg.Primary, bound.Round(time.Millisecond))
		if _, ok := waitFor(ctx, bound, func() (time.Time, bool) { return time.Now(), l.onPrimary() }); !ok {
			rep.Unusable = fmt.Sprintf("the phone was not registered on the primary %s within %v: is it pointed at the lab, with the account given?",
				l.cfg.Primary, bound.Round(time.Millisecond))
			if _, ok := lastRegistered(l.backup); ok {
				rep.Unusable = fmt.Sprintf("the phone registered on the backup %s, and not on the primary %s within %v: it skips its primary, or has the servers the other way round",
					l.cfg.Backup, l.cfg.Primary, bound.Round(time.Millisecond))
			}
			if i > 0 {
				rep.Unusable = fmt.Sprintf("after case %s the phone did not come back to the primary %s within %v", plan[i-1].Name, l.cfg.Primary, bound.Round(time.Millisecond))
			}
			break
		}
		// The phone takes its registration on the primary when the 2xx
		// reaches it, not when the primary sends it: a fault and a call
		// at once would find it still where it was, and the case would
		// test nothing. A hang-up case waits for its call through the
		// primary first, which shows the phone there.
		if c.Trigger != Hangup {
			pause(ctx, settle)
		}
		l.more = i+1 < len(plan)
		if err := l.play(ctx, c, &res, say); err != nil {
			return nil, err
		}
		if res.Verdict == "" { // nothing went wrong
			res.Verdict = Held
		}
		res.To = time.Since(l.start)
		rep.Results = append(rep.Results, res)
		if ctx.Err() != nil {
			break
		}
	}
	return rep, l.judge(rep)
}

// play runs one case: the fault, the trigger, the failover, the mending
// and the failback.
func (l *Lab) play(ctx context.Context, c Case, res *Result, say func(string, ...any)) error {
	var call string // the Call-ID of the call up at the fault, whose BYE the case waits for
	if c.Trigger == Hangup {
		since := time.Now()
		if err := l.command(ctx, "dial", l.cfg.Dial); err != nil {
			res.violated(say, "the call placed before the fault: %v", err)
			return l.restore(ctx, say)
		}
		b := l.cfg.Phone.Budget("INVITE", 0) + l.registerBound(0) + 5*time.Second
		if _, ok := waitFor(ctx, b, func() (time.Time, bool) {
			s, ok := answeredIn(l.primary, "", "INVITE", since)
			call = s.CallID
			return s.At, ok
		}); !ok {
			res.violated(say, "the call placed before the fault was not set up through the primary within %v", b.Round(time.Millisecond))
			return l.restore(ctx, say)
		}
	}
	broke := time.Now()
	if err := l.breakServer(0, c.Fault); err != nil {
		return err
	}
	if c.Both {
		if err := l.breakServer(1, c.Fault); err != nil {
			return err
		}
		return l.bothDown(ctx, res, broke, say)
	}
	switch {
	case c.Stays && c.Fault == labserver.Reset:
		return l.survives(ctx, res, broke, call, say)
	case c.Stays:
		return l.stays(ctx, c, res, broke, say)
	}
	if l.cfg.Phone.Concurrent && c.Trigger == Timers {
		return l.concurrent(ctx, c, res, say)
	}
	var what string
	var ok bool
	var at time.Time
	switch c.Trigger {
	case FarCall:
		if l.cfg.Phone.Concurrent {
			// Registered on the backup already: the far end calls once the
			// phone has had the time to find the primary broken.
			wait := l.detect() + l.cfg.Phone.Budget("REGISTER", 0) + l.slack()
			say("primary %s; the phone keeps its binding on the backup; waiting %v for it to find the primary broken", c.Fault, wait.Round(time.Millisecond))
			pause(ctx, wait)
			what, ok = "the binding on the backup", true
			break
		}
		fallthrough
	case Timers:
		res.FailoverBound = l.detect() + l.cfg.Phone.Budget("REGISTER", 0) + l.registerBound(1) + l.slack()
		what = "a registration on the backup"
		say("primary %s; waiting for %s (bound %v)", c.Fault, what, res.FailoverBound.Round(time.Millisecond))
		at, ok = waitFor(ctx, res.FailoverBound, func() (time.Time, bool) { return answered(l.backup, "REGISTER", broke) })
	case Dial, Hangup:
		// The user's request goes to the dead primary first, then, through
		// the failover, to the far end through the backup.
		method, name, tmpl, verb := "INVITE", "dial", l.cfg.Dial, "dials"
		what = "the call set up through the backup"
		if c.Trigger == Hangup {
			method, name, tmpl, verb = "BYE", "hangup", l.cfg.Hangup, "hangs up"
			what = "the call's BYE through the backup, answered by the far end"
		}
		done := l.background(ctx, name, tmpl)
		res.FailoverBound = commandStart + l.cfg.Phone.Budget(method, 0) + l.registerBound(1) + l.slack()
		say("primary %s, the phone %s; waiting for %s (bound %v)", c.Fault, verb, what, res.FailoverBound.Round(time.Millisecond))
		// The BYE is the call's own: a new call's BYE through the backup
		// would not end the call the far end still has.
		at, ok = waitFor(ctx, res.FailoverBound, func() (time.Time, bool) {
			s, ok := answeredIn(l.backup, call, method, broke)
			return s.At, ok
		})
		if err := <-done; err != nil {
			res.violated(say, "%v", err)
		}
	}
	switch {
	case ok && !at.IsZero():
		res.Failover = at.Sub(broke)
		say("%s after %v", what, res.Failover.Round(time.Millisecond))
	case !ok:
		res.violated(say, "%s did not come within %v of the fault", what, res.FailoverBound.Round(time.Millisecond))
	}
	if c.Trigger == FarCall && ok {
		say("the far end calls the phone through the backup")
		dctx, cancel := context.WithTimeout(ctx, l.cfg.Phone.Budget("INVITE", 1)+l.slack()+5*time.Second)
		err := l.far.Dial(dctx, l.cfg.Backup.String(), l.cfg.User, time.Second)
		cancel()
		if err != nil {
			res.violated(say, "the far end's call through the backup did not reach the phone: %v", err)
		} else {
			say("the far end's call reached the phone, was answered and ended")
		}
	}
	if c.Trigger == Dial && ok {
		// End the call, so that it holds no failback back.
		if err := l.command(ctx, "hangup", l.cfg.Hangup); err != nil {
			res.violated(say, "ending the call: %v", err)
		}
	}
	mended, err := l.mendPrimary()
	if err != nil {
		return err
	}
	p := l.cfg.Phone
	switch {
	case p.Concurrent:
		l.reregistered(ctx, c, res, mended, say)
		return nil
	case !ok || !p.FailbackEnabled:
		return l.restore(ctx, say)
	case p.FailbackMode == "duration" || p.FailbackMode == "":
		// I1: the Failback Interval and 64*T1 (a probe sent while the
		// primary was still down may wait that long), then the REGISTER.
		res.FailbackBound = p.FailbackInterval + 64*p.T1 + l.registerBound(0) + l.slack()
		if c.Fault == labserver.RetryAfter {
			res.FailbackBound += time.Duration(l.cfg.RetryAfter) * time.Second
		}
	case p.FailbackMode == "registration":
		res.FailbackBound = time.Duration(l.cfg.Expires)*time.Second + 64*p.T1 + l.registerBound(0) + l.slack()
	case p.FailbackMode == "new_requests" && l.cfg.Dial != "" && l.cfg.Hangup != "":
		return l.failbackOnRequest(ctx, c, res, say)
	case p.FailbackMode == "new_requests":
		say("failback mode new_requests fails back on the user's next request: not measured without -dial and -hangup")
		return l.restore(ctx, say)
	default:
		say("failback mode %s fails back when the records of a server's name expire: not measured, the lab serves no DNS", p.FailbackMode)
		return l.restore(ctx, say)
	}
	l.backOnPrimary(ctx, res, mended, "failback to the primary", say)
	return nil
}

// failbackOnRequest: in failback mode new_requests the phone probes the
// mended primary when the user places a call, and is on the primary
// within four of the primary's budgets of that request (I1 as R18 amends
// it: a challenge, a 423 and stale nonces may each take one). The lab has
// the phone dial once the primary's Retry-After, if any, is over, and
// measures the failback from the dial.
func (l *Lab) failbackOnRequest(ctx context.Context, c Case, res *Result, say func(string, ...any)) error {
	if c.Fault == labserver.RetryAfter {
		pause(ctx, time.Duration(l.cfg.RetryAfter)*time.Second)
	}
	dialed := time.Now()
	done := l.background(ctx, "dial", l.cfg.Dial)
	res.FailbackBound = commandStart + 4*l.cfg.Phone.Budget("REGISTER", 0) + l.slack()
	l.backOnPrimary(ctx, res, dialed, "failback to the primary on a new call", say)
	if err := <-done; err != nil {
		res.violated(say, "%v", err)
	}
	if err := l.command(ctx, "hangup", l.cfg.Hangup); err != nil {
		res.violated(say, "ending the call: %v", err)
	}
	return l.restore(ctx, say)
}

// bothDown: every server down; the phone tries both and backs off, then
// comes back to the primary when it returns (R9).
func (l *Lab) bothDown(ctx context.Context, res *Result, broke time.Time, say func(string, ...any)) error {
	p := l.cfg.Phone
	// The phone finds the primary down and tries the backup, which is down
	// too: a round.
	res.FailoverBound = l.detect() + p.RoundBound() + l.slack()
	say("both servers down; waiting for the phone to try the backup (bound %v)", res.FailoverBound.Round(time.Millisecond))
	tried := func() (time.Time, bool) {
		for _, sn := range l.sniffers {
			if at, ok := sn.firstTo(l.cfg.Backup, broke); ok {
				return at, true
			}
		}
		return time.Time{}, false
	}
	if at, ok := waitFor(ctx, res.FailoverBound, tried); ok {
		res.Failover = at.Sub(broke)
		say("the phone tried the backup after %v", res.Failover.Round(time.Millisecond))
	} else {
		res.violated(say, "the phone did not try the backup within %v of both servers going down", res.FailoverBound.Round(time.Millisecond))
	}
	// Both stay down a back-off longer: the phone waits it out, and its
	// next round finds them down again, with no storm (I11).
	pause(ctx, p.BackoffBase)
	mended, err := l.mendPrimary()
	if err != nil {
		return err
	}
	backoff := max(p.BackoffMax, p.BackoffBase)
	res.FailbackBound = backoff + p.RoundBound() + l.slack()
	l.backOnPrimary(ctx, res, mended, "registration on the primary after the back-off", say)
	return l.mendServer(1)
}

// slowBy is how late the slow fault answers: Slow percent of the
// phone's budget on the primary.
func (l *Lab) slowBy() time.Duration {
	return l.cfg.Phone.Budget("REGISTER", 0) * time.Duration(l.cfg.Slow) / 100
}

// stays: the primary answers late, within the budget; the phone keeps it
// for as long as its timers take to send it a request and more, and never
// registers on the backup (R1, R3).
func (l *Lab) stays(ctx context.Context, c Case, res *Result, broke time.Time, say func(string, ...any)) error {
	wait := l.detect() + l.cfg.Phone.Budget("REGISTER", 0) + l.slack()
	say("the primary answers after %v, within the phone's budget of %v; watching %v for the phone to stay", l.slowBy().Round(time.Millisecond),
		l.cfg.Phone.Budget("REGISTER", 0).Round(time.Millisecond), wait.Round(time.Millisecond))
	// In concurrent registration the phone refreshes its backup binding
	// all along: only a successive phone's registration there is a move.
	left, moved := waitFor(ctx, wait, func() (time.Time, bool) {
		if l.cfg.Phone.Concurrent {
			return time.Time{}, false
		}
		return answered(l.backup, "REGISTER", broke)
	})
	_, asked := answered(l.primary, "REGISTER", broke)
	if !asked {
		_, asked = answered(l.primary, "OPTIONS", broke)
	}
	// The primary was never lost: mended, the phone need not register
	// there again.
	if err := l.mendServer(0); err != nil {
		return err
	}
	switch {
	case moved:
		res.violated(say, "the phone registered on the backup %v after the primary turned slow, though it answered within the budget", left.Sub(broke).Round(time.Millisecond))
	case !asked:
		res.violated(say, "the phone sent the slow primary no REGISTER or OPTIONS within %v: its timers did not come", wait.Round(time.Millisecond))
	default:
		say("the phone stayed on the primary")
	}
	return l.restore(ctx, say)
}

// survives: the primary reset the phone's connection in the middle of a
// call and listens on. The phone connects again and registers there again
// (RFC 5626 4.4.1; the line model's transport.closed), stays on the
// primary, and the call's BYE reaches the far end through it.
func (l *Lab) survives(ctx context.Context, res *Result, broke time.Time, call string, say func(string, ...any)) error {
	bound := l.detect() + l.registerBound(0) + l.slack()
	say("the primary reset the phone's connections; waiting for it to register there again (bound %v)", bound.Round(time.Millisecond))
	if at, ok := waitFor(ctx, bound, func() (time.Time, bool) { return answered(l.primary, "REGISTER", broke) }); ok {
		say("registered on the primary again after %v", at.Sub(broke).Round(time.Millisecond))
	} else {
		res.violated(say, "the phone did not register on the primary again within %v of the reset", bound.Round(time.Millisecond))
	}
	hungUp := time.Now()
	if err := l.command(ctx, "hangup", l.cfg.Hangup); err != nil {
		res.violated(say, "hanging up: %v", err)
	}
	byeBound := commandStart + l.cfg.Phone.Budget("BYE", 0) + l.slack()
	if _, ok := waitFor(ctx, byeBound, func() (time.Time, bool) {
		s, ok := answeredIn(l.primary, call, "BYE", hungUp)
		return s.At, ok
	}); !ok {
		res.violated(say, "the call's BYE did not reach the far end through the primary within %v", byeBound.Round(time.Millisecond))
	}
	if at, moved := answered(l.backup, "REGISTER", broke); moved && !l.cfg.Phone.Concurrent {
		res.violated(say, "the phone registered on the backup %v after a reset by a primary that was up", at.Sub(broke).Round(time.Millisecond))
	}
	return l.mendServer(0)
}

// concurrent: a phone registered on every server at once (R17) moves
// nothing when the primary breaks; once the primary is back, it registers
// there again, at its next refresh or after its back-off.
func (l *Lab) concurrent(ctx context.Context, c Case, res *Result, say func(string, ...any)) error {
	wait := l.detect() + l.cfg.Phone.Budget("REGISTER", 0) + l.slack()
	say("primary %s; the phone keeps its binding on the backup; waiting %v for it to find the primary broken", c.Fault, wait.Round(time.Millisecond))
	pause(ctx, wait)
	mended, err := l.mendPrimary()
	if err != nil {
		return err
	}
	l.reregistered(ctx, c, res, mended, say)
	return nil
}

// reregistered waits for a phone in concurrent registration to register
// again on the primary mended at mended: at its next refresh, or after its
// back-off (R17).
func (l *Lab) reregistered(ctx context.Context, c Case, res *Result, mended time.Time, say func(string, ...any)) {
	p := l.cfg.Phone
	res.FailbackBound = max(time.Duration(l.cfg.Expires)*time.Second, p.BackoffMax, p.BackoffBase) + l.registerBound(0) + l.slack()
	if c.Fault == labserver.RetryAfter {
		res.FailbackBound += time.Duration(l.cfg.RetryAfter) * time.Second
	}
	l.backOnPrimary(ctx, res, mended, "registration on the primary", say)
}

// backOnPrimary waits up to the case's failback bound for the phone's
// registration on the primary, mended at mended, and measures it; what
// names it in the progress and in the case's reason.
func (l *Lab) backOnPrimary(ctx context.Context, res *Result, mended time.Time, what string, say func(string, ...any)) {
	say("primary mended; waiting for the %s (bound %v)", what, res.FailbackBound.Round(time.Millisecond))
	if at, ok := waitFor(ctx, res.FailbackBound, func() (time.Time, bool) { return answered(l.primary, "REGISTER", mended) }); ok {
		res.Failback = at.Sub(mended)
		say("the %s after %v", what, res.Failback.Round(time.Millisecond))
		return
	}
	res.violated(say, "no %s within %v of its return", what, res.FailbackBound.Round(time.Millisecond))
}

// mendPrimary ends the primary's fault, and says when: the phone is back
// on the primary only with a registration there since.
func (l *Lab) mendPrimary() (time.Time, error) {
	l.mended = time.Now()
	return l.mended, l.mendServer(0)
}

// breakServer puts server k (0 the primary, 1 the backup) in fault f.
func (l *Lab) breakServer(k int, f labserver.Fault) error {
	l.outages = append(l.outages, capture.Outage{Server: k, From: time.Now(), What: string(f)})
	o := labserver.Options{RetryAfter: l.cfg.RetryAfter, Delay: l.slowBy()}
	return l.server(k).Break(f, o)
}

// mendServer ends server k's fault.
func (l *Lab) mendServer(k int) error {
	for i := len(l.outages) - 1; i >= 0; i-- {
		if o := &l.outages[i]; o.Server == k && o.To.IsZero() {
			o.To = time.Now()
			break
		}
	}
	return l.server(k).Mend()
}

// server is the lab's server k: 0 the primary, 1 the backup.
func (l *Lab) server(k int) *labserver.Registrar {
	if k == 0 {
		return l.primary
	}
	return l.backup
}

// restore brings the phone back to the primary for the next case when
// failback does not: the backup fails for a moment (killed), and a phone
// that loses a backup starts again from the primary (R13).
func (l *Lab) restore(ctx context.Context, say func(string, ...any)) error {
	if !l.more || l.onPrimary() {
		return nil // the last case, or the phone is back already
	}
	say("the backup fails for a moment, to bring the phone back to the primary")
	killed := time.Now()
	if err := l.breakServer(1, labserver.Kill); err != nil {
		return err
	}
	bound := l.detect() + l.cfg.Phone.Budget("REGISTER", 1) + l.registerBound(0) + l.slack()
	waitFor(ctx, bound, func() (time.Time, bool) { return answered(l.primary, "REGISTER", killed) })
	return l.mendServer(1)
}

// Picture draws the run's timeline (format svg or png): a lane per server,
// the phone's registrations above, the violations in red.
func (l *Lab) Picture(w io.Writer, format string, rep *Report) error {
	if l.analysis == nil {
		return fmt.Errorf("no run to draw")
	}
	return l.analysis.Picture(w, format, rep.Capture.Verdicts, l.outages...)
}

// judge runs the checker on the capture of the whole run and gives each
// case the findings made in its time.
func (l *Lab) judge(rep *Report) error {
	var buf bytes.Buffer
	if err := l.Pcap(&buf); err != nil {
		return err
	}
	a, err := capture.Analyze(bytes.NewReader(buf.Bytes()), l.settings())
	if err != nil {
		return fmt.Errorf("the lab's capture: %w", err)
	}
	l.analysis, rep.Capture = a, a.Report("the lab")
	offset := a.Begin.Sub(l.start) // the capture's first frame, in the run's time
	for _, v := range rep.Capture.Verdicts {
		for _, f := range v.Findings {
			at := offset + f.At
			for i := range rep.Results {
				r := &rep.Results[i]
				if r.Verdict != NotRun && at >= r.From && at <= r.To {
					r.Findings = append(r.Findings, f)
					if r.Verdict != Violated {
						r.Verdict, r.Why = Violated, fmt.Sprintf("%s: %s", v.ID, f.Msg)
					}
				}
			}
		}
	}
	for _, s := range l.sniffers {
		if s.Cut() {
			rep.Unusable = fmt.Sprintf("the capture filled its %d MiB: the phone floods the lab (I11)", maxCaptured>>20)
		}
	}
	return nil
}
