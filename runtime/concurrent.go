package runtime

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipfailover/sipfailover/fsm"
	"github.com/sipfailover/sipfailover/runtime/clock"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
	"github.com/sipfailover/sipfailover/runtime/wire"
)

// Concurrent registration mode (R17): the line keeps a binding on every
// server of its list (model/binding.yaml, each with its own Call-ID,
// refresh, keep-alive and back-off), and the machine of
// model/concurrent.yaml says which server its new requests go to: the
// highest-priority one whose binding is up. A request whose server fails
// moves at once to the next one up, with no REGISTER first.

// concurrent is a line's registrations in concurrent mode; the line's lock
// guards it.
type concurrent struct {
	line     *Line
	m        *fsm.ConcurrentMachine
	bindings []*binding
}

// binding is the line's registration on one server in concurrent mode. It
// implements fsm.BindingActions.
type binding struct {
	line      *Line
	server    int                // its place in line.targets
	ep        transport.Endpoint // its server; the zero transport.Endpoint while the server's name is looked up
	m         *fsm.BindingMachine
	timers    clock.Timers[fsm.BindingTimer]
	reg       dialog
	main, ka  *txn
	challenge *wire.Answer // the last 401/407 to its REGISTER
	waiting   bool         // its REGISTER waits for the server's lookup (R20)
}

func newConcurrent(l *Line) (*concurrent, error) {
	p := l.cfg.ConcurrentParams()
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("line %s: %w", l.cfg.Name, err)
	}
	return &concurrent{line: l, m: fsm.NewConcurrentMachine(p, nil)}, nil
}

// to returns the binding whose server is at ep, or nil.
func (c *concurrent) to(ep transport.Endpoint) *binding {
	if i := slices.IndexFunc(c.bindings, func(b *binding) bool { return b != nil && b.ep == ep }); i >= 0 {
		return c.bindings[i]
	}
	return nil
}

// at returns the binding on server i, or nil.
func (c *concurrent) at(i int) *binding {
	if i < 0 || i >= len(c.bindings) {
		return nil
	}
	return c.bindings[i]
}

// view is the line's state and server in concurrent mode, as the line
// model names them (the two machines share their state names).
func (c *concurrent) view() (fsm.LineState, int) {
	st, _ := fsm.ParseLineState(c.m.State().String())
	return st, c.m.Vars().Server
}

// postConcurrent queues an event of the line's concurrent machine.
func (l *Line) postConcurrent(ev fsm.ConcurrentEvent, reason string) {
	l.queue = append(l.queue, pending{ccev: ev, cc: true, reason: reason})
}

// postBinding queues an event of binding b.
func (l *Line) postBinding(b *binding, ev fsm.BindingEvent, reason string) {
	l.queue = append(l.queue, pending{binding: b, bev: ev, reason: reason})
}

// fromLine turns an event the line hears into its concurrent machine's or
// its bindings' (a request's failover goes straight to its binding).
func (c *concurrent) fromLine(p pending) {
	switch p.ev {
	case fsm.LineEventUserRegister:
		c.fire(fsm.ConcurrentEventUserRegister, p.reason)
	case fsm.LineEventUserUnregister:
		c.fire(fsm.ConcurrentEventUserUnregister, p.reason)
	case fsm.LineEventCallsEnded:
		c.fire(fsm.ConcurrentEventCallsEnded, p.reason)
	}
}

// sync tells the concurrent machine how the bindings stand (R17).
func (c *concurrent) sync() {
	p := c.m.Params()
	p.ServerCount = max(1, len(c.bindings))
	p.BestUp, p.AnyTrying = p.ServerCount, false
	for i, b := range c.bindings {
		switch b.m.State() {
		case fsm.BindingStateRegistered:
			p.BestUp = min(p.BestUp, i)
		case fsm.BindingStateRegistering:
			p.AnyTrying = true
		}
	}
	st, server := c.view()
	cur := c.at(server)
	p.CurrentUp = st.HasTag(fsm.LineTagRegistered) && cur != nil && cur.m.State() == fsm.BindingStateRegistered
	p.CallsUp = c.line.callsUp()
	c.m.SetParams(p)
}

// fire delivers ev to the concurrent machine; l.mu is held.
func (c *concurrent) fire(ev fsm.ConcurrentEvent, reason string) {
	l := c.line
	c.sync()
	before := c.m.Vars().Server
	step, err := c.m.Fire(ev)
	if err != nil {
		l.agent.log.Error("event refused by the model", "line", l.cfg.Name, "machine", "concurrent", "event", ev.String(), "err", err)
		return
	}
	if step.Ignored {
		return
	}
	for _, e := range step.Effects {
		e.Run(c, nil, nil) // the machine has no timers
	}
	from, _ := fsm.ParseLineState(step.From.String())
	to, server := c.view()
	if step.From != step.To || server != before {
		failed := ""
		if to == fsm.LineStateAllFailed {
			failed = cmp.Or(l.status.LastReason, "every server's binding is down")
		}
		l.record(from, to, ev.String(), step.Transition, server, reason, failed, time.Time{})
	}
	l.tellRequests(from, to, server != before)
}

var _ fsm.ConcurrentActions = (*concurrent)(nil)

// RegisterAll takes the server list anew (R20) and starts a binding on
// every server of it; a binding on a server the list still has keeps its
// dialog, the others end and their bindings expire.
func (c *concurrent) RegisterAll() {
	l := c.line
	l.setList(l.list())
	old := c.bindings
	c.bindings = nil
	for i, s := range l.targets {
		last := i == len(l.targets)-1
		j := slices.IndexFunc(old, func(b *binding) bool { return b != nil && s.ep != (transport.Endpoint{}) && b.ep == s.ep })
		if j < 0 {
			c.bindings = append(c.bindings, newBinding(l, i, last))
			continue
		}
		b := old[j]
		old[j] = nil
		b.server = i
		p := b.m.Params()
		p.IsLast = last
		b.m.SetParams(p)
		c.bindings = append(c.bindings, b)
	}
	for _, b := range old {
		if b != nil {
			b.stop()
		}
	}
	for _, b := range c.bindings {
		l.postBinding(b, fsm.BindingEventUserRegister, "")
	}
}

// UnregisterAll removes every binding; the machine hears bindings.idle
// when all have ended.
func (c *concurrent) UnregisterAll() {
	if c.allIdle() {
		c.line.postConcurrent(fsm.ConcurrentEventBindingsIdle, "")
		return
	}
	for _, b := range c.bindings {
		c.line.postBinding(b, fsm.BindingEventUserUnregister, "") // the last to end posts bindings.idle (binding.fire)
	}
}

// allIdle says whether no binding is registered or trying.
func (c *concurrent) allIdle() bool {
	return !slices.ContainsFunc(c.bindings, func(b *binding) bool { return b.m.State() != fsm.BindingStateIdle })
}

// stop ends every binding at once, without a word to the servers.
func (c *concurrent) stop() {
	for _, b := range c.bindings {
		b.stop()
	}
}

func newBinding(l *Line, i int, last bool) *binding {
	b := &binding{line: l, server: i, reg: newDialog(), ep: l.targets[i].ep}
	b.m = fsm.NewBindingMachine(l.cfg.BindingParams(last), nil)
	b.timers = clock.NewTimers[fsm.BindingTimer](l.agent.clock, &l.mu, l.agent.jitter, func(t fsm.BindingTimer) {
		reason := ""
		if t == fsm.BindingTimerBudget {
			switch {
			case b.main != nil:
				reason = fmt.Sprintf("no answer from %s after %d transmissions in %v", b.main.dst, b.main.rt.Sent(), time.Duration(b.m.Budget()))
				l.agent.net.Forget(b.main.dst)
			case b.waiting:
				reason = fmt.Sprintf("no DNS answer for %s within %v", l.keys[l.targets[b.server].cfg], time.Duration(b.m.Budget()))
			}
		}
		l.postBinding(b, t.Event(), reason)
		l.drain()
	})
	b.m.Start()
	return b
}

// budgetFromSend makes the budget of a REGISTER started since main was the
// binding's count from its first transmission, which pacing may have put
// off (R21).
func (b *binding) budgetFromSend(main *txn) {
	if b.main != main {
		b.timers.Extend(fsm.BindingTimerBudget, b.main.pending(b.line.agent.clock.Now()))
	}
}

// stop ends the binding's timers and transactions.
func (b *binding) stop() {
	b.timers.StopAll()
	b.line.finish(b.main)
	b.line.finish(b.ka)
}

// fire delivers ev to the binding's machine; l.mu is held.
func (b *binding) fire(ev fsm.BindingEvent, reason string) {
	l := b.line
	if l.cc == nil || l.cc.at(b.server) != b {
		return // an old binding's late news
	}
	step, err := b.m.Fire(ev)
	if err != nil {
		l.agent.log.Error("event refused by the model", "line", l.cfg.Name, "machine", "binding", "server", b.server, "event", ev.String(), "err", err)
		return
	}
	if step.Ignored {
		return
	}
	main := b.main
	for _, e := range step.Effects {
		e.Run(b, b.timers.Arm, b.timers.Cancel)
	}
	b.budgetFromSend(main)
	if step.To == fsm.BindingStateWaiting && step.From != step.To {
		st := &l.status
		st.LastFailure, st.LastReason, st.LastFailAt = ev.String(), cmp.Or(reason, ev.String()), l.agent.clock.Now()
	}
	l.agent.log.Debug("binding transition", "line", l.cfg.Name, "server", b.server, "from", step.From.String(),
		"to", step.To.String(), "event", ev.String(), "reason", reason)
	if step.To == fsm.BindingStateIdle && l.cc.m.State() == fsm.ConcurrentStateUnregistering && l.cc.allIdle() {
		l.postConcurrent(fsm.ConcurrentEventBindingsIdle, "")
	}
}

var _ fsm.BindingActions = (*binding)(nil)

// SendRegister sends a new REGISTER of the binding.
func (b *binding) SendRegister() { b.send(-1, nil) }

// SendRegisterAuth resends it with credentials for the challenge.
func (b *binding) SendRegisterAuth() { b.send(b.expires(), b.challenge) }

// SendRegisterAgain resends it as the server asked.
func (b *binding) SendRegisterAgain() { b.send(b.expires(), b.challenge) }

// SendUnregister sends the binding's REGISTER with Expires 0.
func (b *binding) SendUnregister() { b.send(0, nil) }

// AbandonRegister forgets the REGISTER in flight, or the wait for a lookup.
func (b *binding) AbandonRegister() {
	b.line.finish(b.main)
	b.waiting = false
}

// SendKeepalive sends OPTIONS to the binding's server (R5).
func (b *binding) SendKeepalive() {
	fail := func(reason string) { b.line.postBinding(b, fsm.BindingEventKeepaliveFailed, reason) }
	if t := b.line.keepalive(&b.ka, b.server, b.m.MaxTransmissions(), time.Duration(b.m.Budget()), fail); t != nil {
		t.binding = b
	}
}

// SendFlowKeepalive sends a flow keep-alive to the binding's server: one
// that watches the flow while registered there, one that looks for a sign
// of life while the binding waits out its back-off (R9).
func (b *binding) SendFlowKeepalive() {
	if b.ep != (transport.Endpoint{}) {
		b.line.flowPing(b.ep, b.m.State() == fsm.BindingStateWaiting)
	}
}

// TellLine tells the line's concurrent machine that the binding came up or
// went down.
func (b *binding) TellLine() {
	b.line.postConcurrent(fsm.ConcurrentEventBindingsChanged, fmt.Sprintf("binding on %s %s", b.line.server(b.server), b.m.State()))
}

// expires is what the binding's REGISTER asks now: 0 while it
// de-registers, else the server's TTL.
func (b *binding) expires() int {
	if b.m.State() == fsm.BindingStateUnregistering {
		return 0
	}
	return -1
}

// send sends the binding's REGISTER asking expires (-1: the server's TTL),
// answering challenge if given. A server still being looked up makes it
// wait (located sends it); one that could not be, a Retry-After, or a
// challenge that cannot be answered is the model's event with the reason.
func (b *binding) send(expires int, challenge *wire.Answer) {
	l := b.line
	s := l.targets[b.server]
	b.waiting = s.pending
	switch {
	case s.pending:
		l.finish(b.main)
		return
	case s.err != nil:
		l.finish(b.main)
		l.postBinding(b, fsm.BindingEventLookupFailed, s.err.Error())
		return
	}
	if held := l.heldOff(s.ep); held != "" {
		l.finish(b.main)
		l.postBinding(b, fsm.BindingEventServerHeldOff, held)
		return
	}
	if expires < 0 {
		expires = l.ttlOf(s)
	}
	spec := l.spec(sip.REGISTER, s.ep, expires)
	spec.stale = l.bound[addrOf(s.ep)]
	if l.cfg.Outbound {
		// One flow per proxy (RFC 5626 4.2): the line's instance, and the
		// proxy's number as the flow's reg-id.
		spec.supported = "outbound, path"
		spec.contactParams = fmt.Sprintf(`;reg-id=%d;+sip.instance="<%s>"`, b.server+1, l.instance)
	}
	b.challenge = nil
	if err := l.authorize(&spec, challenge); err != nil {
		l.finish(b.main)
		l.postBinding(b, fsm.BindingEventRespRejected, err.Error())
		return
	}
	refused := fsm.BindingEventTransportTcp
	if s.ep.Transport == settings.TransportUDP {
		refused = fsm.BindingEventTransportIcmp
	}
	t := l.start(&b.main, txnRegister, &b.reg, spec, b.server, b.m.MaxTransmissions(), func(reason string) { l.postBinding(b, refused, reason) })
	if t.live {
		t.binding = b
	}
}

// answered handles a final answer to the binding's REGISTER or keep-alive.
func (b *binding) answered(t *txn, res *wire.Answer, reason string) {
	l := b.line
	if t.kind == txnKeepalive {
		if slices.Contains(l.cfg.UnavailableCodes, res.StatusCode) {
			l.postBinding(b, fsm.BindingEventKeepaliveFailed, reason)
		}
		return
	}
	v := b.m.Vars()
	out, refresh, why := l.registerOutcome(t, res, reason, v.Challenges == 0 && v.Retries == 0)
	switch out {
	case outGranted:
		p := b.m.Params()
		if refresh > 0 {
			p.RefreshInterval = fsm.Duration(refresh)
		}
		if res.FlowTimer > 0 && l.cfg.Outbound {
			// The registrar's Flow-Timer (whole seconds, at least one):
			// keep-alives at least that often (RFC 5626 4.4.1), within the
			// model's bound of an hour.
			p.FlowEnabled, p.FlowInterval = true, fsm.Duration(min(res.FlowTimer, time.Hour))
		}
		b.m.SetParams(p)
	case outAgain, outChallenged:
		if res.StatusCode == sip.StatusUnauthorized || res.StatusCode == sip.StatusProxyAuthRequired { // not a 423
			b.challenge = res
		}
	}
	l.postBinding(b, [...]fsm.BindingEvent{outGranted: fsm.BindingEventResp2xx, outRejected: fsm.BindingEventRespRejected,
		outAgain: fsm.BindingEventRespRetry, outChallenged: fsm.BindingEventRespChallenge, outUnavailable: fsm.BindingEventRespUnavailable,
		// One registrar behind the flows' proxies (R24): this flow's
		// registration failed, as its proxy's own unavailability fails it.
		outRegistrarUnavailable: fsm.BindingEventRespUnavailable}[out], why)
}

// located hears that a lookup of k ended: a binding whose REGISTER waits
// for it takes the name's first target in the place the name held (the
// list keeps its length: the bindings are numbered by it), and sends.
func (c *concurrent) located(k serverKey) {
	l := c.line
	for _, b := range c.bindings {
		s := l.targets[b.server]
		if !b.waiting || l.keys[s.cfg] != k {
			continue
		}
		ts, err, pending := l.agent.loc.get(k)
		switch {
		case pending:
			continue
		case len(ts) > 0:
			l.targets[b.server] = slot{target: ts[0], cfg: s.cfg}
			b.ep = ts[0].ep
		default:
			l.targets[b.server].pending, l.targets[b.server].err = false, err
		}
		main := b.main
		b.send(b.expires(), nil)
		b.budgetFromSend(main)
	}
}
