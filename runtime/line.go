package runtime

import (
	"cmp"
	"context"
	"crypto/sha1"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sipfailover/sipfailover/fsm"
	"github.com/sipfailover/sipfailover/runtime/clock"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
	"github.com/sipfailover/sipfailover/runtime/wire"
)

// Line is one SIP line: the generated machine of model/line.yaml, its
// timers, and its requests. It implements fsm.LineActions.
type Line struct {
	agent *Agent
	cfg   settings.LineConfig
	hops  []settings.ServerConfig // where requests go: the servers, or the outbound proxies (R22)
	// instance is the line's RFC 5626 instance: "urn:uuid:...", the same
	// for the line's settings across restarts (R24).
	instance string
	keys     []serverKey // the hops, located by the agent (R20)

	mu       sync.Mutex
	started  bool // the machine's initial entry effects have been performed
	m        *fsm.LineMachine
	queue    []pending
	draining bool
	since    time.Time // while a failed transaction is told: its first transmission (refuse)
	timers   clock.Timers[fsm.LineTimer]
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
	regServer       transport.Endpoint          // the server the line's registration is on
	prevServer      transport.Endpoint          // the server left at failback, for R12
	regRegistrar    int                         // behind outbound proxies, the registrar of the line's registration (R22)
	prevRegistrar   int                         // and the one left at failback, for R12
	flows           flows                       // the flow keep-alives (RFC 5626 4.4)
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
	since   time.Time // a failure's: when the request that failed was first sent; zero when not known
}

// Status is what a line reports (R14).
type Status struct {
	Line       string `json:"line"`
	State      string `json:"state"`
	Registered bool   `json:"registered"`
	Server     int    `json:"server"`      // the server's number in the line's list, from 1: 1 is the primary
	ServerName string `json:"server_name"` // the server as configured: "pbx.example.com (SRV, auto)"
	Target     string `json:"target"`      // the SRV target in use, "pbx1.example.com:5060"; "" without SRV
	ServerAddr string `json:"server_addr"` // "UDP 127.0.0.1:5060"; "" while its name is looked up
	Where      string `json:"where"`       // the three in a few words: "example.test via p1.example.test:5060 at UDP 10.0.0.5:5060", and behind outbound proxies "to the registrar ..."
	// Registrar is the registrar behind the line's outbound proxies, as
	// configured; the server fields above then name the proxy in use
	// (R22). "" for a line without proxies.
	Registrar string `json:"registrar,omitempty"`
	// RegistrarNumber is that registrar's number among the line's
	// servers, from 1: 1 is the primary registrar (R22). 0 without proxies.
	RegistrarNumber int       `json:"registrar_number,omitempty"`
	LastFailure     string    `json:"last_failure"`             // the event: "transport.icmp"
	LastReason      string    `json:"last_reason"`              // "ICMP port unreachable from UDP 127.0.0.1:5060"
	LastFailAt      time.Time `json:"last_failure_at,omitzero"` // absent when it never failed
	Since           time.Time `json:"since"`                    // time of the last state change
	// Bindings are the line's registrations in concurrent mode, one a
	// server (R17); none in successive mode.
	Bindings []BindingStatus `json:"bindings,omitempty"`
	// Calls is how many calls of the line have not ended.
	Calls int `json:"calls"`
	// Waiting says what the line waits for before it moves, when it does:
	// "failback waits for the calls to end" on a backup whose failback
	// waits for idle (R18).
	Waiting string `json:"waiting,omitempty"`
	// The flow keep-alives (RFC 5626 4.4): how many the line sent, how
	// many a server that had answered left unanswered, and when one was
	// last answered, with its round trip: a cheap health signal.
	FlowKeepalivesSent uint64        `json:"flow_keepalives_sent"`
	FlowKeepalivesLost uint64        `json:"flow_keepalives_lost"`
	FlowAnsweredAt     time.Time     `json:"flow_keepalive_answered_at,omitzero"`
	FlowRTT            time.Duration `json:"flow_keepalive_rtt_ns,omitempty"`
}

func newLine(a *Agent, cfg settings.LineConfig) (*Line, error) {
	l := &Line{agent: a, cfg: cfg, retryUntil: map[serverAddr]time.Time{}, creds: map[serverAddr]*credentials{},
		minExpires: map[serverAddr]int{}, bound: map[serverAddr]string{}}
	l.timers = clock.NewTimers[fsm.LineTimer](a.clock, &l.mu, a.jitter, func(t fsm.LineTimer) { l.timerFired(t) })
	l.hops = cfg.Hops()
	l.instance = instanceOf(cfg)
	for _, s := range l.hops {
		l.keys = append(l.keys, keyOf(s))
	}
	p := cfg.LineParams()
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
func (l *Line) Config() settings.LineConfig { return l.cfg }

// Name is the line's configured name.
func (l *Line) Name() string { return l.cfg.Name }

// Status returns what the line reports now.
func (l *Line) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.status
	st.FlowKeepalivesSent, st.FlowKeepalivesLost = l.flows.sent, l.flows.lost
	st.FlowAnsweredAt, st.FlowRTT = l.flows.lastAnswered, l.flows.rtt
	for _, c := range l.calls {
		if !c.m.State().Final() {
			st.Calls++
		}
	}
	if state, _ := l.view(); state == fsm.LineStateBackupRegistered && *l.cfg.EnableFailback == 1 && l.cfg.FailbackWhen != "always" && l.callsUp() {
		st.Waiting = "failback waits for the calls to end"
	}
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

// UserEvent delivers a user's event of model/line.yaml by its name, as a
// phone's menu would: user.register and user.unregister as Register and
// Unregister do, and any other user.* event the model has (one added to
// the model needs no code here). Events the runtime raises itself
// (answers, timers, failures) are refused, and so is an event the machines
// of a concurrent line do not have.
func (l *Line) UserEvent(name string) error {
	ev, err := fsm.ParseLineEvent(name)
	switch {
	case err != nil || !strings.HasPrefix(name, "user."):
		return fmt.Errorf("%q is not a user's event of the line model; those are %s", name, strings.Join(UserEvents(), ", "))
	case ev == fsm.LineEventUserRegister:
		l.Register()
	case ev == fsm.LineEventUserUnregister:
		l.Unregister()
	case l.cc != nil:
		return fmt.Errorf("line %s registers concurrently (model/concurrent.yaml): it has no %s", l.cfg.Name, name)
	default:
		l.deliver(ev, "the user asked")
	}
	return nil
}

// UserEvents lists the user's events of model/line.yaml by name.
func UserEvents() []string {
	var out []string
	for e := fsm.LineEvent(1); !strings.HasPrefix(e.String(), "LineEvent("); e++ {
		if strings.HasPrefix(e.String(), "user.") {
			out = append(out, e.String())
		}
	}
	return out
}

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
func (l *Line) post(ev fsm.LineEvent, reason string) { l.postSince(ev, reason, l.since) }

// postSince posts an event of a request the line first sent at since: for
// a failure, when the fault the line saw began (Transition.FaultAt).
func (l *Line) postSince(ev fsm.LineEvent, reason string, since time.Time) {
	l.queue = append(l.queue, pending{ev: ev, reason: reason, since: since})
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
		l.flowStep(step.From, step.To)
		// The line's server failed (not the probe's): the line moves on.
		moved := slices.Contains(failureEvents, step.Event) && step.Event != fsm.LineEventProbeFailed &&
			step.Event != fsm.LineEventTimerProbe && (step.From.HasTag(fsm.LineTagTrying) || step.From.HasTag(fsm.LineTagRegistered))
		l.report(step, p.reason, p.since)
		if moved && last {
			// Every target of the name has failed this round: look its
			// records up again (R20), once the step is reported, for the
			// round it began has taken its list.
			l.agent.loc.expire(name)
		}
		l.tellRequests(step.From, step.To, false)
	}
}

// FailureEvents are the line events that report a failure (R1, R14): the
// status's last failure is one of them.
func FailureEvents() []fsm.LineEvent { return slices.Clone(failureEvents) }

var failureEvents = []fsm.LineEvent{
	fsm.LineEventRespUnavailable, fsm.LineEventRespRegistrarDown, fsm.LineEventRespRejected, fsm.LineEventTransportIcmp, fsm.LineEventTransportTcp,
	fsm.LineEventTimerBudget, fsm.LineEventServerHeldOff, fsm.LineEventKeepaliveFailed, fsm.LineEventFlowLost, fsm.LineEventRequestUnavailable,
	fsm.LineEventProbeFailed, fsm.LineEventTimerProbe,
}

// report updates the status and logs the transition (R14).
func (l *Line) report(step fsm.LineStep, reason string, since time.Time) {
	failed := ""
	switch {
	case step.To == fsm.LineStateFailed && step.Event == fsm.LineEventRespChallenge:
		failed = "authentication failed: credentials rejected after a challenge (" + reason + ")"
	case slices.Contains(failureEvents, step.Event):
		failed = cmp.Or(reason, step.Event.String())
	}
	l.record(step.From, step.To, step.Event.String(), step.Transition, l.m.Vars().Server, reason, failed, since)
}

// record updates the status with a step of the line's machine (in
// concurrent mode, of model/concurrent.yaml, whose states the line model
// names too), and logs it; failed is the failure's reason to report, ""
// when the step is none (R14).
func (l *Line) record(from, to fsm.LineState, event, id string, server int, reason, failed string, since time.Time) {
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
	if l.cfg.Proxied() {
		st.Registrar = keyOf(l.cfg.Servers[l.m.Vars().Registrar]).String()
		st.RegistrarNumber = l.m.Vars().Registrar + 1
		if st.Where != "" {
			st.Where += " to the registrar " + st.Registrar
		}
	}
	t := Transition{Line: l.cfg.Name, From: from.String(), To: to.String(), Event: event,
		ID: id, Server: server + 1, ServerAddr: st.ServerAddr, Reason: reason, At: now}
	if l.cfg.Proxied() {
		t.Registrar = l.m.Vars().Registrar + 1
	}
	if failed != "" {
		t.FaultAt = cmp.Or(since, now)
	}
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
		e.Run((*lineActions)(l), l.timers.Arm, l.timers.Cancel)
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
		l.timers.Extend(fsm.LineTimerBudget, l.main.pending(now))
	}
	if l.probe != probe {
		l.timers.Extend(fsm.LineTimerProbe, l.probe.pending(now))
	}
}

// timerFired runs with l.mu held, for a timer still current.
func (l *Line) timerFired(t fsm.LineTimer) {
	reason := ""
	var since time.Time
	switch t {
	case fsm.LineTimerBudget:
		switch {
		case l.main != nil:
			reason = fmt.Sprintf("no answer from %s after %d transmissions in %v", l.main.dst, l.main.rt.Sent(), time.Duration(l.m.Budget()))
			since = l.main.began
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
	l.postSince(t.Event(), reason, since)
	l.drain()
}

// instanceOf is a line's RFC 5626 instance URN (section 4.1): a name-based
// UUID (RFC 9562 version 5) of its name and address of record, so that
// the registrar sees the same instance after a restart.
func instanceOf(cfg settings.LineConfig) string {
	registrar := ""
	if len(cfg.Servers) > 0 {
		registrar = cfg.Servers[0].Addr
	}
	h := sha1.Sum([]byte("sipfailover line " + cfg.Name + " " + cfg.User + "@" + cfg.Domain + " " + registrar))
	h[6] = h[6]&0x0f | 0x50 // version 5
	h[8] = h[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}
