package runtime

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipfailover/sipfailover/fsm"
	"github.com/sipfailover/sipfailover/runtime/wire"
)

// txnKind says which of a line's requests a transaction carries.
type txnKind uint8

const (
	txnUnknown    txnKind = iota
	txnRegister           // the line's REGISTER: register, refresh, de-register
	txnProbe              // the failback probe (R10)
	txnKeepalive          // OPTIONS keep-alive (R5)
	txnDeregister         // Expires 0 to the backup after failback (R12); answers ignored
	txnRequest            // an out-of-dialog request of the line (R8)
)

// txn is one non-INVITE client transaction the line runs itself: it
// retransmits on RFC 3261 Timer E (UDP only) up to max transmissions, and
// the model's timers give the verdict.
type txn struct {
	kind       txnKind
	dst        Endpoint
	server     int
	branch     string
	id         txnID
	contact    sip.Uri // the Contact the request carried
	contactURI string  // the same, as written
	expires    int     // a REGISTER's Expires, -1 for none
	authorized bool    // it carried digest credentials
	msg        []byte
	sent       int
	max        int // 0: no cap
	interval   time.Duration
	retrans    Timer
	deadline   Timer // keep-alive and de-register only: their own budget
	slot       **txn // where the owner keeps it; emptied when it finishes
	live       bool
	refused    func(reason string)
	owner      *Request  // nil for the line's own requests
	binding    *binding  // the binding a REGISTER or keep-alive is for, in concurrent mode (R17)
	invite     bool      // an INVITE: Timer A is not capped at T2 (RFC 3261 17.1.1.2)
	firstAt    time.Time // when pacing lets it go first (R21); zero: sent at once
}

// txnID is what a response must repeat to answer a transaction's request,
// besides its branch (RFC 3261 8.1.3.3, 17.1.3).
type txnID struct {
	callID string
	tag    string // our From tag
	cseq   uint32
	method sip.RequestMethod
}

// answers says whether res, from the server at from, answers t: the same
// Call-ID, From tag, CSeq number and method as the request, from the
// server the request went to. Anything else is someone else's answer, or a
// forgery.
func (t *txn) answers(from Endpoint, res *wire.Answer) bool {
	tag, _ := res.From().Params.Get("tag")
	cs := res.CSeq()
	return res.CallID().Value() == t.id.callID && tag == t.id.tag && cs.SeqNo == t.id.cseq && cs.MethodName == t.id.method &&
		from.Host == t.dst.Host && from.Port == t.dst.Port && from.Transport == t.dst.Transport
}

// Line is one SIP line: the generated machine of model/line.yaml, its
// timers, and its requests. It implements fsm.LineActions.
type Line struct {
	agent *Agent
	cfg   LineConfig
	keys  []serverKey // the configured servers, located by the agent (R20)

	mu       sync.Mutex
	started  bool // the machine's initial entry effects have been performed
	m        *fsm.LineMachine
	queue    []pending
	draining bool
	timers   timerSet[fsm.LineTimer]
	requests []*Request // requests in flight (R6-R8), sharing this lock and queue
	calls    []*Call    // calls not yet ended

	// The server list (R20): the model's server i is targets[i]. The probe
	// goes to the first of a list taken when it starts, which becomes the
	// line's at failback.
	targets, probeTargets []slot
	waiting, probeWaiting bool // the REGISTER or the probe waits for its server's lookup

	cc *concurrent // concurrent registration mode (R17); nil in successive mode

	reg, probeDlg   dialog
	prevReg         dialog // the registration left at failback, for R12
	main, probe, ka *txn
	dereg           *txn
	mainChallenge   *wire.Answer // the last 401/407 to the line's REGISTER
	probeChallenge  *wire.Answer
	creds           map[serverAddr]*credentials // server -> its latest challenge, reused (RFC 7616 3.4)
	bound           map[serverAddr]string       // server -> the Contact it holds a binding of (R12)
	minExpires      map[serverAddr]int          // server -> the Min-Expires of its 423 (RFC 3261 10.2.8)
	retryUntil      map[serverAddr]time.Time    // server -> end of its 503 Retry-After (R1, I3)
	regServer       Endpoint                    // the server the line's registration is on
	prevServer      Endpoint                    // the server left at failback, for R12
	status          Status
}

// pending is a queued event: for the line, one of its requests, or one of
// its calls.
type pending struct {
	ev      fsm.LineEvent
	req     *Request
	rev     fsm.RequestEvent
	call    *Call
	cev     fsm.CallEvent
	binding *binding // concurrent mode (R17): an event of one binding
	bev     fsm.BindingEvent
	cc      bool // concurrent mode: an event of the line's concurrent machine
	ccev    fsm.ConcurrentEvent
	reason  string
}

// Status is what a line reports (R14).
type Status struct {
	Line        string    `json:"line"`
	State       string    `json:"state"`
	Registered  bool      `json:"registered"`
	Server      int       `json:"server"`       // the server's number in the line's list, from 1: 1 is the primary
	ServerName  string    `json:"server_name"`  // the server as configured: "pbx.example.com (SRV, auto)"
	Target      string    `json:"target"`       // the SRV target in use, "pbx1.example.com:5060"; "" without SRV
	ServerAddr  string    `json:"server_addr"`  // "UDP 127.0.0.1:5060"; "" while its name is looked up
	Where       string    `json:"where"`        // the three in a few words: "example.test via p1.example.test:5060 at UDP 10.0.0.5:5060"
	LastFailure string    `json:"last_failure"` // the event: "transport.icmp"
	LastReason  string    `json:"last_reason"`  // "ICMP port unreachable from UDP 127.0.0.1:5060"
	LastFailAt  time.Time `json:"last_failure_at"`
	Since       time.Time `json:"since"` // time of the last state change
	// Bindings are the line's registrations in concurrent mode, one a
	// server (R17); none in successive mode.
	Bindings []BindingStatus `json:"bindings,omitempty"`
}

func newLine(a *Agent, cfg LineConfig) (*Line, error) {
	l := &Line{agent: a, cfg: cfg, retryUntil: map[serverAddr]time.Time{}, creds: map[serverAddr]*credentials{},
		minExpires: map[serverAddr]int{}, bound: map[serverAddr]string{}}
	l.timers = newTimerSet[fsm.LineTimer](a, &l.mu, func(t fsm.LineTimer) { l.timerFired(t) })
	for _, s := range cfg.Servers {
		l.keys = append(l.keys, keyOf(s))
	}
	p := lineParams(cfg)
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("line %s: %w", cfg.Name, err)
	}
	l.m = fsm.NewLineMachine(p, nil)
	if cfg.RegistrationMode == "concurrent" {
		cc, err := newConcurrent(l)
		if err != nil {
			return nil, err
		}
		l.cc = cc
	}
	for i, k := range l.keys {
		l.targets = append(l.targets, slot{cfg: i, pending: true}) // until the first locate
		a.loc.use(k, l)
	}
	l.reg = newDialog()
	l.status = Status{Line: cfg.Name, State: l.m.State().String(), Since: a.clock.Now()}
	return l, nil
}

// Config returns the line's settings, defaults filled in.
func (l *Line) Config() LineConfig { return l.cfg }

// Name is the line's configured name.
func (l *Line) Name() string { return l.cfg.Name }

// Status returns what the line reports now.
func (l *Line) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.status
	if l.cc != nil {
		for _, b := range l.cc.bindings {
			_, _, addr, _ := l.describe(b.server)
			st.Bindings = append(st.Bindings, BindingStatus{Server: b.server + 1, ServerAddr: addr, State: b.m.State().String()})
		}
	}
	return st
}

// BindingStatus is one binding of a line in concurrent mode (R17).
type BindingStatus struct {
	Server     int    `json:"server"` // the server's number, from 1
	ServerAddr string `json:"server_addr"`
	State      string `json:"state"` // a state of model/binding.yaml: registered, waiting ...
}

// State returns the machine's state; in concurrent mode, that of
// model/concurrent.yaml, whose states the line model names too.
func (l *Line) State() fsm.LineState {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, _ := l.view()
	return st
}

// view returns the line's state and the server its new requests go to,
// in either registration mode (R17); l.mu is held.
func (l *Line) view() (fsm.LineState, int) {
	if l.cc != nil {
		return l.cc.view()
	}
	return l.m.State(), l.m.Vars().Server
}

// Register starts the line, or re-registers it from the primary (R5).
func (l *Line) Register() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.started {
		l.started = true
		if l.cc != nil {
			l.cc.m.Start() // idle, with no entry effects
		} else {
			effects, err := l.m.Start()
			if err != nil {
				l.agent.log.Error("start", "line", l.cfg.Name, "err", err)
				return
			}
			l.perform(effects)
		}
	}
	l.post(fsm.LineEventUserRegister, "")
	l.drain()
}

// Unregister removes the line's registration; the line ends idle.
func (l *Line) Unregister() { l.deliver(fsm.LineEventUserUnregister, "") }

// RequestUnavailable tells the line that a call's request found its server
// unavailable (R6, R7).
func (l *Line) RequestUnavailable(reason string) {
	l.deliver(fsm.LineEventRequestUnavailable, reason)
}

// deliver queues an event from outside and runs the machine.
func (l *Line) deliver(ev fsm.LineEvent, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.post(ev, reason)
	l.drain()
}

// post queues an event; the caller holds l.mu. Events that actions raise
// (a send refused at once) are posted, never fired from inside an action.
func (l *Line) post(ev fsm.LineEvent, reason string) {
	l.queue = append(l.queue, pending{ev: ev, reason: reason})
}

// drain fires queued events one at a time, performing each step's effects
// before the next event (run to completion).
func (l *Line) drain() {
	if l.draining {
		return
	}
	l.draining = true
	defer func() { l.draining = false }()
	for len(l.queue) > 0 {
		p := l.queue[0]
		l.queue = l.queue[1:]
		if p.req != nil {
			p.req.fire(p.rev, p.reason)
			continue
		}
		if p.call != nil {
			p.call.fire(p.cev, p.reason)
			continue
		}
		if p.binding != nil {
			p.binding.fire(p.bev, p.reason)
			continue
		}
		if p.cc {
			l.cc.fire(p.ccev, p.reason)
			continue
		}
		if l.cc != nil {
			l.cc.fromLine(p)
			continue
		}
		name, last := l.lastOfName(l.m.Vars().Server)
		l.syncCallsUp()
		step, err := l.m.Fire(p.ev)
		if err != nil {
			l.agent.log.Error("event refused by the model", "line", l.cfg.Name, "event", p.ev.String(), "state", l.m.State().String(), "err", err)
			continue
		}
		if step.Ignored {
			continue
		}
		l.perform(step.Effects)
		// The line's server failed (not the probe's): the line moves on.
		moved := slices.Contains(failureEvents, step.Event) && step.Event != fsm.LineEventProbeFailed &&
			step.Event != fsm.LineEventTimerProbe && (step.From.HasTag(fsm.LineTagTrying) || step.From.HasTag(fsm.LineTagRegistered))
		if moved && last {
			// Every target of the name has failed this round: look its
			// records up again (R20).
			l.agent.loc.expire(name)
		}
		l.report(step, p.reason)
		l.tellRequests(step.From, step.To, false)
	}
}

// FailureEvents are the line events that report a failure (R1, R14): the
// status's last failure is one of them.
func FailureEvents() []fsm.LineEvent { return slices.Clone(failureEvents) }

var failureEvents = []fsm.LineEvent{
	fsm.LineEventRespUnavailable, fsm.LineEventRespRejected, fsm.LineEventTransportIcmp, fsm.LineEventTransportTcp,
	fsm.LineEventTimerBudget, fsm.LineEventServerHeldOff, fsm.LineEventKeepaliveFailed, fsm.LineEventRequestUnavailable,
	fsm.LineEventProbeFailed, fsm.LineEventTimerProbe,
}

// report updates the status and logs the transition (R14).
func (l *Line) report(step fsm.LineStep, reason string) {
	failed := ""
	switch {
	case step.To == fsm.LineStateFailed && step.Event == fsm.LineEventRespChallenge:
		failed = "authentication failed: credentials rejected after a challenge (" + reason + ")"
	case slices.Contains(failureEvents, step.Event):
		failed = cmp.Or(reason, step.Event.String())
	}
	l.record(step.From, step.To, step.Event.String(), step.Transition, l.m.Vars().Server, reason, failed)
}

// record updates the status with a step of the line's machine (in
// concurrent mode, of model/concurrent.yaml, whose states the line model
// names too), and logs it; failed is the failure's reason to report, ""
// when the step is none (R14).
func (l *Line) record(from, to fsm.LineState, event, id string, server int, reason, failed string) {
	now := l.agent.clock.Now()
	st := &l.status
	if failed != "" {
		st.LastFailure, st.LastReason, st.LastFailAt = event, failed, now
	}
	if from != to {
		st.Since = now
	}
	st.State = to.String()
	st.Registered = to.HasTag(fsm.LineTagRegistered)
	st.Server = server + 1 // numbered from 1, as the pages and phones number them
	st.ServerName, st.Target, st.ServerAddr, st.Where = l.describe(server)
	t := Transition{Line: l.cfg.Name, From: from.String(), To: to.String(), Event: event,
		ID: id, Server: server + 1, ServerAddr: st.ServerAddr, Reason: reason, At: now}
	level := slog.LevelInfo
	if from == to {
		level = slog.LevelDebug // a refresh, a keep-alive: the state stays
	}
	l.agent.log.Log(context.Background(), level, "line transition", "line", t.Line, "from", t.From, "to", t.To,
		"event", t.Event, "transition", t.ID, "server", t.Server, "addr", t.ServerAddr, "reason", t.Reason)
	if l.agent.watch != nil {
		l.agent.watch(t)
	}
}

// perform carries out a step's effects in order.
func (l *Line) perform(effects []fsm.LineEffect) {
	main, probe := l.main, l.probe
	for _, e := range effects {
		e.Run((*lineActions)(l), l.timers.armModel, l.timers.cancel)
	}
	l.budgetsFromSend(main, probe)
}

// budgetsFromSend makes the budget of a REGISTER or probe started since
// main and probe were the line's count from its first transmission, which
// pacing may have put off (R21): the wait for a turn is not the server's
// silence.
func (l *Line) budgetsFromSend(main, probe *txn) {
	now := l.agent.clock.Now()
	if l.main != main {
		l.timers.extend(fsm.LineTimerBudget, l.main.pending(now))
	}
	if l.probe != probe {
		l.timers.extend(fsm.LineTimerProbe, l.probe.pending(now))
	}
}

// timerFired runs with l.mu held, for a timer still current.
func (l *Line) timerFired(t fsm.LineTimer) {
	reason := ""
	switch t {
	case fsm.LineTimerBudget:
		switch {
		case l.main != nil:
			reason = fmt.Sprintf("no answer from %s after %d transmissions in %v", l.main.dst, l.main.sent, time.Duration(l.m.Budget()))
			l.agent.net.Forget(l.main.dst)
		case l.waiting:
			reason = fmt.Sprintf("no DNS answer for %s within %v", l.keys[l.targets[l.m.Vars().Server].cfg], time.Duration(l.m.Budget()))
		}
	case fsm.LineTimerProbe:
		within := "64*T1"
		if l.m.ByRequests() {
			within = time.Duration(l.m.PrimaryBudget()).String() + ", the primary's budget"
		}
		switch {
		case l.probe != nil:
			reason = fmt.Sprintf("no answer to the probe from %s within %s", l.probe.dst, within)
			l.agent.net.Forget(l.probe.dst)
		case l.probeWaiting:
			reason = fmt.Sprintf("no DNS answer for %s within %s", l.keys[l.probeTargets[0].cfg], within)
		}
	}
	l.post(t.Event(), reason)
	l.drain()
}

// --- transactions ---

func (l *Line) spec(method sip.RequestMethod, dst Endpoint, expires int) requestSpec {
	host, port := l.agent.net.Local(dst)
	domain := l.cfg.Domain
	if domain == "" {
		domain = l.domainOf(dst)
	}
	return requestSpec{method: method, dst: dst, local: [2]string{uriHost(host), strconv.Itoa(port)},
		user: l.cfg.User, domain: domain, display: l.cfg.DisplayName, expires: expires}
}

// start replaces the transaction in slot with a new one and sends it; a
// send refused at once ends it and calls refused (nil: nothing).
func (l *Line) start(slot **txn, kind txnKind, d *dialog, s requestSpec, server, maxTx int, refused func(string)) *txn {
	l.finish(*slot)
	msg, branch := s.build(d)
	t := &txn{kind: kind, dst: s.dst, server: server, branch: branch, msg: msg, max: maxTx,
		id: txnID{callID: d.callID, tag: d.tag, cseq: d.cseq, method: s.method}, contact: s.contact(), contactURI: s.contactURI(), expires: s.expires, authorized: s.auth != "",
		interval: time.Duration(l.cfg.T1), slot: slot, live: true, refused: refused}
	*slot = t
	l.agent.bind(branch, l)
	if wait := l.agent.pace.Load().reserve(s.dst.at(), l.agent.clock.Now()); wait > 0 {
		t.firstAt = l.agent.clock.Now().Add(wait)
		l.transmitAfter(t, wait)
		return t
	}
	l.transmit(t)
	return t
}

// pending is how long t still waits for its first transmission, put off by
// the agent's pacing (R21); 0 for nil or a request already sent. A budget
// armed with the request adds it: the server's silence counts from the
// moment the server could hear.
func (t *txn) pending(now time.Time) time.Duration {
	if t == nil || t.sent > 0 || t.firstAt.IsZero() {
		return 0
	}
	return max(0, t.firstAt.Sub(now))
}

// postLine returns a refused callback that posts ev to the line.
func (l *Line) postLine(ev fsm.LineEvent) func(string) {
	return func(reason string) { l.post(ev, reason) }
}

// transmit sends t once more and, over UDP, schedules the next
// retransmission on Timer E: T1, 2*T1, 4*T1 ... capped at T2 (RFC 3261
// 17.1.2.2; an INVITE's Timer A is not capped, 17.1.1.2), unless the cap of
// transmissions is reached (I4).
func (l *Line) transmit(t *txn) {
	t.sent++
	if err := l.agent.net.Send(t.dst, t.msg); err != nil {
		l.finish(t)
		if t.refused != nil {
			t.refused(err.Error())
		}
		return
	}
	if t.dst.Transport != TransportUDP || (t.max > 0 && t.sent >= t.max) {
		return
	}
	wait := t.interval
	t.interval = 2 * t.interval
	if !t.invite {
		t.interval = min(t.interval, time.Duration(l.cfg.T2))
	}
	l.transmitAfter(t, wait)
}

// transmitAfter sends t again after wait, unless it has finished by then.
func (l *Line) transmitAfter(t *txn, wait time.Duration) {
	t.retrans = l.agent.clock.AfterFunc(wait, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if t.live {
			l.transmit(t)
			l.drain()
		}
	})
}

// finish stops t's timers and forgets its branch.
func (l *Line) finish(t *txn) {
	if t == nil {
		return
	}
	if t.retrans != nil {
		t.retrans.Stop()
	}
	if t.deadline != nil {
		t.deadline.Stop()
	}
	l.agent.unbind(t.branch)
	t.live = false
	if t.slot != nil && *t.slot == t {
		*t.slot = nil
	}
}

// response handles an answer from the server at from, routed here by
// branch.
func (l *Line) response(from Endpoint, branch string, res *wire.Answer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var t *txn
	for _, c := range l.transactions() {
		if c.branch == branch {
			t = c
		}
	}
	if t == nil {
		return // late
	}
	if !t.answers(from, res) {
		l.agent.counters.unmatched.Add(1)
		l.agent.log.Debug("response matches no transaction; dropped", "line", l.cfg.Name, "from", from.String(),
			"status", res.StatusCode, "call_id", res.CallID().Value(), "cseq", res.CSeq().Value())
		return
	}
	if res.StatusCode < 200 {
		if t.owner != nil {
			t.owner.provisional(t, res)
			l.drain()
		}
		return // for the line's own requests Timer E and the budget go on
	}
	l.finish(t)
	if res.StatusCode < 300 {
		delete(l.retryUntil, t.dst.at()) // the server is back: its Retry-After is over
	}
	if t.owner != nil {
		t.owner.answer(t, res)
		l.drain()
		return
	}
	code := res.StatusCode
	reason := fmt.Sprintf("%d %s from %s", code, res.Reason, t.dst)
	unavailable := slices.Contains(l.cfg.UnavailableCodes, code)
	if unavailable {
		l.noteRetryAfter(res, t.dst, &reason)
	}
	challenged := code == sip.StatusUnauthorized || code == sip.StatusProxyAuthRequired
	if t.binding != nil {
		t.binding.answered(t, res, reason)
		l.drain()
		return
	}
	switch t.kind {
	case txnRegister:
		v := l.m.Vars()
		out, refresh, why := l.registerOutcome(t, res, reason, v.Challenges == 0 && v.Retries == 0)
		switch out {
		case outGranted:
			l.regServer = t.dst
			l.setRefresh(refresh)
		case outAgain, outChallenged:
			if challenged { // not a 423
				l.mainChallenge = res
			}
		}
		l.post([...]fsm.LineEvent{outGranted: fsm.LineEventResp2xx, outRejected: fsm.LineEventRespRejected, outAgain: fsm.LineEventRespRetry,
			outChallenged: fsm.LineEventRespChallenge, outUnavailable: fsm.LineEventRespUnavailable}[out], why)
	case txnProbe:
		v := l.m.Vars()
		out, refresh, why := l.registerOutcome(t, res, reason, v.ProbeChallenges == 0 && v.ProbeRetries == 0)
		switch out {
		case outGranted:
			l.setRefresh(refresh)
		case outAgain, outChallenged:
			if challenged {
				l.probeChallenge = res
			}
		}
		l.post([...]fsm.LineEvent{outGranted: fsm.LineEventProbe2xx, outRejected: fsm.LineEventProbeFailed, outAgain: fsm.LineEventProbeRetry,
			outChallenged: fsm.LineEventProbeChallenge, outUnavailable: fsm.LineEventProbeFailed}[out], why)
	case txnKeepalive:
		if unavailable {
			t.refused(reason)
		}
	case txnDeregister:
		// Its answer is not awaited, but a challenge is answered once, or
		// the binding would stay (R12).
		if challenged && (!t.authorized || res.Stale()) {
			l.deregister(res)
		}
	}
	l.drain()
}

// transactions lists the transactions in flight: the line's and its requests'.
func (l *Line) transactions() []*txn {
	var out []*txn
	for _, t := range []*txn{l.main, l.probe, l.ka, l.dereg} {
		if t != nil {
			out = append(out, t)
		}
	}
	for _, r := range l.requests {
		if r.tx != nil {
			out = append(out, r.tx)
		}
	}
	if l.cc != nil {
		for _, b := range l.cc.bindings {
			for _, t := range []*txn{b.main, b.ka} {
				if t != nil {
					out = append(out, t)
				}
			}
		}
	}
	return out
}

// lateRetryAfter takes the Retry-After of a late answer from the server at
// from to a request of this line (its From names the line's user), when its
// code makes that server unavailable for this line.
func (l *Line) lateRetryAfter(from Endpoint, res *wire.Answer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if res.From().Address.User != l.cfg.User {
		return
	}
	if l.serverAt(from) >= 0 && slices.Contains(l.cfg.UnavailableCodes, res.StatusCode) {
		var reason string
		l.noteRetryAfter(res, from, &reason)
	}
}

// noteRetryAfter holds server off for a 503's Retry-After (R1, I3).
func (l *Line) noteRetryAfter(res *wire.Answer, server Endpoint, reason *string) {
	if ra := res.RetryAfter; ra > 0 {
		if until := l.agent.clock.Now().Add(ra); until.After(l.retryUntil[server.at()]) {
			l.retryUntil[server.at()] = until // a shorter one does not cut a longer one short
		}
		*reason += fmt.Sprintf(" (Retry-After %v)", ra)
	}
}

// outcome is what a final answer to a REGISTER means (R1).
type outcome uint8

const (
	outGranted     outcome = iota // a 2xx that kept the binding
	outRejected                   // a final failure failover cannot fix
	outAgain                      // 423 or a stale nonce: the same REGISTER again
	outChallenged                 // 401 or 407: answer with credentials
	outUnavailable                // a code of the unavailable set
)

// registerOutcome judges res, a final answer to the REGISTER of t (a
// line's, a probe's or a binding's; first when it began an exchange, no
// challenge or retry answered yet), and returns what it means, the time to
// refresh a granted binding at (0 for a de-registration), and the reason
// to report.
func (l *Line) registerOutcome(t *txn, res *wire.Answer, reason string, first bool) (outcome, time.Duration, string) {
	code := res.StatusCode
	challenged := code == sip.StatusUnauthorized || code == sip.StatusProxyAuthRequired
	switch {
	case code < 300:
		refresh, ok := l.grant(t, res)
		if !ok {
			// The registrar answered but keeps no binding (a full location
			// database, a broken replication): it cannot serve the line,
			// which goes where one can (R1).
			return outUnavailable, 0, reason + " granting expires 0: the binding was not kept"
		}
		return outGranted, refresh, reason
	case challenged && t.authorized && res.Stale() && !first:
		// Credentials that answered this exchange's challenge, or its
		// stale nonce, went stale: the same REGISTER again with the fresh
		// nonce. On the exchange's first REGISTER they were the server's
		// latest, reused, and the stale answer is its first challenge
		// (below): a registrar that wants a fresh nonce for every request
		// and a longer expiry then costs a challenge and two retries, within
		// what the models allow.
		return outAgain, 0, reason + ": stale nonce"
	case challenged:
		return outChallenged, 0, reason
	case code == sip.StatusIntervalToBrief:
		if why := l.noteMinExpires(t, res); why != "" {
			return outRejected, 0, reason + ": " + why
		}
		return outAgain, 0, reason
	case slices.Contains(l.cfg.UnavailableCodes, code):
		return outUnavailable, 0, reason
	}
	return outRejected, 0, reason
}

// grant records the Contact the server now holds after res, a 2xx to the
// REGISTER of t, and returns when to refresh it so that the refresh comes
// before the binding expires (I8); 0 for a de-registration. It returns
// false when the server granted 0 to a REGISTER that asked to keep the
// binding: that is no registration.
func (l *Line) grant(t *txn, res *wire.Answer) (time.Duration, bool) {
	if t.expires <= 0 {
		delete(l.bound, t.dst.at()) // a de-registration: 0 is what it asked
		return 0, true
	}
	d, zero := grantedExpiry(res, t.expires, t.contact)
	if zero {
		return 0, false
	}
	l.bound[t.dst.at()] = t.contactURI
	return refreshAfter(d), true
}

// setRefresh times the line's next refresh; 0 leaves it as it is.
func (l *Line) setRefresh(d time.Duration) {
	if d > 0 {
		p := l.m.Params()
		p.RefreshInterval = fsm.Duration(d)
		l.m.SetParams(p)
	}
}

// unreachable handles ICMP unreachable or a failed connection to dst.
func (l *Line) unreachable(dst Endpoint, err *TransportError) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ev := fsm.LineEventTransportTcp
	if dst.Transport == TransportUDP {
		ev = fsm.LineEventTransportIcmp
	}
	hit := false
	for _, t := range l.transactions() {
		if t.dst != dst {
			continue
		}
		hit = true
		l.finish(t)
		if b := t.binding; b != nil {
			ev := fsm.BindingEventKeepaliveFailed
			if t.kind == txnRegister {
				ev = map[bool]fsm.BindingEvent{true: fsm.BindingEventTransportIcmp, false: fsm.BindingEventTransportTcp}[dst.Transport == TransportUDP]
			}
			l.postBinding(b, ev, err.Error())
			continue
		}
		switch t.kind {
		case txnRequest:
			rev := fsm.RequestEventTransportTcp
			if dst.Transport == TransportUDP {
				rev = fsm.RequestEventTransportIcmp
			}
			l.postReq(t.owner, rev, err.Error())
		case txnRegister:
			l.post(ev, err.Error())
		case txnProbe:
			l.post(fsm.LineEventProbeFailed, err.Error())
		case txnKeepalive:
			t.refused(err.Error())
		}
	}
	if !hit && dst.Transport != TransportUDP && l.cc != nil {
		// Nothing in flight, but a binding's connection is gone.
		for _, b := range l.cc.bindings {
			if b.m.State() == fsm.BindingStateRegistered && b.ep == dst {
				l.postBinding(b, fsm.BindingEventTransportClosed, err.Error())
				hit = true
			}
		}
	}
	if !hit && dst.Transport != TransportUDP && l.cc == nil && l.m.State().HasTag(fsm.LineTagRegistered) && l.server(l.m.Vars().Server) == dst {
		// Nothing in flight, but the registration's connection is gone.
		l.post(fsm.LineEventTransportClosed, err.Error())
		hit = true
	}
	if hit {
		l.drain()
	}
}

// --- fsm.LineActions ---

// lineActions performs the line model's actions for a Line. It is a type
// of its own so that the actions are the machine's to call, not an
// embedder's: a Line's methods are its API.
type lineActions Line

var _ fsm.LineActions = (*lineActions)(nil)

// SendRegister sends a new REGISTER of the line's registration to the
// current server, or posts server.held_off while its Retry-After runs.
func (a *lineActions) SendRegister() {
	l := (*Line)(a)
	l.sendRegister(l.m.Vars().Server, -1, nil)
}

// heldOff says why server may not be tried now, "" when it may: a 503's
// Retry-After that has not elapsed holds it off for every request of the
// line, probes included (R1, I3).
func (l *Line) heldOff(server Endpoint) string {
	until, ok := l.retryUntil[server.at()]
	if !ok {
		return ""
	}
	if !l.agent.clock.Now().Before(until) {
		delete(l.retryUntil, server.at())
		return ""
	}
	return fmt.Sprintf("%s: Retry-After until %s", server, until.Format(time.TimeOnly))
}

// sendRegister sends the line's REGISTER to server, asking expires (-1:
// the server's TTL), answering challenge if given, else with the server's
// reused credentials if it has challenged before. A challenge that cannot
// be answered is a rejection with its reason.
//
// While the server's name is being looked up nothing is sent: located
// sends it when the answer comes (R20). While the server's Retry-After
// runs nothing is sent: server.held_off says so (R1, I3), for the first
// REGISTER of a round as for one that answers a challenge.
func (l *Line) sendRegister(server, expires int, challenge *wire.Answer) {
	dst, ok := l.locateServer(server)
	if !ok {
		return
	}
	if held := l.heldOff(dst); held != "" {
		l.finish(l.main)
		l.post(fsm.LineEventServerHeldOff, held)
		return
	}
	if expires < 0 {
		expires = l.ttl(server)
	}
	s := l.spec(sip.REGISTER, dst, expires)
	s.stale = l.bound[dst.at()]
	l.mainChallenge = nil
	if err := l.authorize(&s, challenge); err != nil {
		l.finish(l.main)
		l.post(fsm.LineEventRespRejected, err.Error())
		return
	}
	l.start(&l.main, txnRegister, &l.reg, s, server, l.m.MaxTransmissions(), l.postLine(refusedEvent(dst)))
}

// ttl is the expiry the line asks of server i: its TTL, or the Min-Expires
// of its 423 when that is longer.
func (l *Line) ttl(i int) int { return l.ttlOf(l.targets[i]) }

func (l *Line) ttlOf(s slot) int { return max(*l.cfg.Servers[s.cfg].TTL, l.minExpires[s.ep.at()]) }

// maxMinExpires is the longest Min-Expires a 423 may ask for (a day).
const maxMinExpires = 86400

// noteMinExpires records the Min-Expires of a 423 to the REGISTER of t, so
// that the next REGISTER to its server asks for it (RFC 3261 10.2.8); it
// returns why it cannot, "" when it can.
func (l *Line) noteMinExpires(t *txn, res *wire.Answer) string {
	v := res.MinExpires
	switch {
	case res.MinExpiresProblem != "":
		return res.MinExpiresProblem
	case v > maxMinExpires:
		return fmt.Sprintf("Min-Expires %d is above the line's cap of %d s", v, maxMinExpires)
	case v <= t.expires:
		return fmt.Sprintf("Min-Expires %d is no longer than the %d s asked", v, t.expires)
	}
	l.minExpires[t.dst.at()] = v
	return ""
}

func refusedEvent(dst Endpoint) fsm.LineEvent {
	if dst.Transport == TransportUDP {
		return fsm.LineEventTransportIcmp
	}
	return fsm.LineEventTransportTcp
}

// SendRegisterAuth resends the line's REGISTER with digest credentials.
func (a *lineActions) SendRegisterAuth() {
	l := (*Line)(a)
	l.sendRegister(l.m.Vars().Server, l.currentExpires(), l.mainChallenge)
}

// SendRegisterAgain resends the line's REGISTER as the server asked: with
// the Min-Expires of its 423, or credentials for its fresh nonce.
func (a *lineActions) SendRegisterAgain() {
	l := (*Line)(a)
	l.sendRegister(l.m.Vars().Server, l.currentExpires(), l.mainChallenge)
}

// currentExpires is what the line's REGISTER asks now: 0 while it
// de-registers, else the current server's TTL.
func (l *Line) currentExpires() int {
	if l.m.State() == fsm.LineStateUnregistering {
		return 0
	}
	return l.ttl(l.m.Vars().Server)
}

// SendUnregister sends REGISTER with Expires 0 to the current server.
// While the server's Retry-After runs it is not sent: server.held_off ends
// the de-registration, and the binding is left to expire (R1).
func (a *lineActions) SendUnregister() {
	l := (*Line)(a)
	l.sendRegister(l.m.Vars().Server, 0, nil)
}

// AbandonRegister forgets the line's REGISTER in flight, or that it
// waits for a lookup.
func (a *lineActions) AbandonRegister() {
	l := (*Line)(a)
	l.finish(l.main)
	l.waiting = false
}

// SendKeepalive sends OPTIONS to the current server. It has the retry
// budget of the current server; no answer within it is keepalive.failed.
// One still waiting is left alone: a keep-alive interval shorter than the
// budget must not keep a silent server from ever timing out.
//
// Its failure counts only while the line is still on that server: an
// OPTIONS still out to a server the line has left (the user registered it
// again elsewhere, a refresh failed over) says nothing of the server the
// line is on now (I12).
func (a *lineActions) SendKeepalive() {
	l := (*Line)(a)
	server := l.m.Vars().Server
	l.keepalive(&l.ka, server, l.m.MaxTransmissions(), time.Duration(l.m.Budget()), func(reason string) {
		if l.m.Vars().Server == server {
			l.post(fsm.LineEventKeepaliveFailed, reason)
		}
	})
}

// keepalive sends OPTIONS to server i into slot, unless the last one still
// waits, with the server's budget: failed hears of no answer within it, a
// refusal, or the server's Retry-After (every request is held off, R1). An
// unavailable answer is failed's too (response).
func (l *Line) keepalive(slot **txn, i, maxTx int, budget time.Duration, failed func(string)) *txn {
	if t := *slot; t != nil {
		if t.server == i {
			return nil
		}
		l.finish(t) // one to a server the line has left: given up
	}
	dst := l.server(i)
	if held := l.heldOff(dst); held != "" {
		failed(held)
		return nil
	}
	d := newDialog()
	t := l.start(slot, txnKeepalive, &d, l.spec(sip.OPTIONS, dst, -1), i, maxTx, failed)
	if !t.live {
		return nil
	}
	t.deadline = l.agent.clock.AfterFunc(budget+t.pending(l.agent.clock.Now()), func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if *slot == t {
			l.finish(t)
			l.agent.net.Forget(t.dst)
			failed(fmt.Sprintf("no answer to OPTIONS from %s within %v", t.dst, budget))
			l.drain()
		}
	})
	return t
}

// SendProbe sends an independent REGISTER, with its own Call-ID, to the
// primary (R10); it is retransmitted until the model's probe timer ends it.
// The primary is the first server of the list as located now (R20): the
// records may have changed since the line's round began.
func (a *lineActions) SendProbe() {
	l := (*Line)(a)
	l.probeDlg = newDialog()
	l.probeTargets = l.list()
	l.sendProbe(nil)
}

// SendProbeAuth resends the probe with digest credentials.
func (a *lineActions) SendProbeAuth() {
	l := (*Line)(a)
	l.sendProbe(l.probeChallenge)
}

// SendProbeAgain resends the probe as the primary asked: with the
// Min-Expires of its 423, or credentials for its fresh nonce.
func (a *lineActions) SendProbeAgain() {
	l := (*Line)(a)
	l.sendProbe(l.probeChallenge)
}

// sendProbe sends the probe REGISTER, answering challenge if given, else
// with the primary's reused credentials if it has challenged before.
// While the primary's name is being looked up, the probe waits for it; a
// lookup that failed, or the primary's Retry-After, is probe.failed (R1,
// I3, R20).
func (l *Line) sendProbe(challenge *wire.Answer) {
	l.probeTargets = l.expand(l.probeTargets, 0)
	primary := l.probeTargets[0]
	l.probeWaiting = primary.pending
	switch {
	case primary.pending:
		l.finish(l.probe)
		return
	case primary.err != nil:
		l.finish(l.probe)
		l.post(fsm.LineEventProbeFailed, primary.err.Error())
		return
	}
	if held := l.heldOff(primary.ep); held != "" {
		l.finish(l.probe)
		l.post(fsm.LineEventProbeFailed, held)
		return
	}
	s := l.spec(sip.REGISTER, primary.ep, l.ttlOf(primary))
	s.stale = l.bound[primary.ep.at()]
	l.probeChallenge = nil
	if err := l.authorize(&s, challenge); err != nil {
		l.finish(l.probe)
		l.post(fsm.LineEventProbeFailed, err.Error())
		return
	}
	l.start(&l.probe, txnProbe, &l.probeDlg, s, 0, 0, l.postLine(fsm.LineEventProbeFailed))
}

// AbandonProbe forgets the probe, or that it waits for a lookup.
func (a *lineActions) AbandonProbe() {
	l := (*Line)(a)
	l.finish(l.probe)
	l.probeWaiting = false
}

// AdoptProbe makes the probe's dialog the line's registration on the
// primary (R10), and the list the probe was sent from the line's; the
// backup's registration is kept only for DeregisterBackup.
func (a *lineActions) AdoptProbe() {
	l := (*Line)(a)
	l.prevServer, l.prevReg, l.regServer = l.regServer, l.reg, l.probeTargets[0].ep
	l.finish(l.probe)
	l.reg, l.probeDlg = l.probeDlg, dialog{}
	l.setList(l.probeTargets)
}

// DeregisterBackup sends Expires 0, once, to the server the line left,
// through that registration's dialog (R12). Its answer is not awaited, and
// a lost one only leaves the binding to expire, as when the setting is off,
// so it is never retransmitted: no server gets more than its budget (I4).
func (a *lineActions) DeregisterBackup() {
	l := (*Line)(a)
	l.deregister(nil)
}

// deregister sends the Expires 0 of DeregisterBackup, with the server's
// reused credentials, or answering challenge.
func (l *Line) deregister(challenge *wire.Answer) {
	server := l.prevServer
	if server == l.regServer || l.heldOff(server) != "" {
		// The records now put the backup first, and the line registered
		// there again; or it is held off (R1): the binding is left to
		// expire.
		return
	}
	s := l.spec(sip.REGISTER, server, 0)
	s.stale = l.bound[server.at()]
	delete(l.bound, server.at()) // its answer is not awaited
	if l.authorize(&s, challenge) != nil {
		return
	}
	l.start(&l.dereg, txnDeregister, &l.prevReg, s, -1, 1, nil)
	if t := l.dereg; t != nil {
		t.deadline = l.agent.clock.AfterFunc(64*time.Duration(l.cfg.T1)+t.pending(l.agent.clock.Now()), func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.dereg == t {
				l.finish(t)
			}
		})
	}
}
