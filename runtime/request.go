package runtime

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipfailover/sipfailover/fsm"
	"github.com/sipfailover/sipfailover/runtime/clock"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
	"github.com/sipfailover/sipfailover/runtime/wire"
)

// Request is one request of a line other than its own registration, driven
// by the generated machine of model/request.yaml: an out-of-dialog request
// (R8: OPTIONS, MESSAGE ...) or a call's INVITE or BYE (R6, R7). A new
// request goes to the server the line is registered on, an in-dialog one to
// the server its dialog was set up through (I10); when that server is
// unavailable the line fails over, and the request goes to the next server
// only after the line has registered there (I5). It shares its line's lock
// and event queue.
type Request struct {
	line        *Line
	m           *fsm.RequestMachine
	method      sip.RequestMethod
	target      string
	contentType string
	body        []byte
	dlg         *dialog
	call        *Call                // the call an INVITE or BYE belongs to; nil for R8
	dead        []transport.Endpoint // servers found unavailable (R7: their routes go)
	last        transport.Endpoint   // where it was sent last
	tx          *txn
	challenge   *wire.Answer
	timers      clock.Timers[fsm.RequestTimer]
	result      RequestResult
	done        chan struct{}
}

// RequestResult is how a request ended.
type RequestResult struct {
	State  string // "done" (answered) or "failed" (no server could carry it)
	Code   int    // the final answer's status code; 0 when none came
	Reason string
	Server int       // the server that answered, or the last one tried: its number, from 1
	Ended  time.Time // by the line's clock
}

// ErrMethod is returned by Send for a method that needs a dialog or is the
// line's own (INVITE, BYE, ACK, CANCEL, REGISTER).
var ErrMethod = errors.New("method not sent with Send")

// Send sends an out-of-dialog request from the line to target (a SIP URI,
// or a number or user@host that the line completes as Dial does) and
// returns at once; Done is closed when it ends (R8).
func (l *Line) Send(method sip.RequestMethod, target, contentType string, body []byte) (*Request, error) {
	switch method {
	case sip.INVITE, sip.BYE, sip.ACK, sip.CANCEL, sip.REGISTER:
		return nil, fmt.Errorf("%w: %s", ErrMethod, method)
	}
	target = l.complete(target)
	if err := checkTarget(target); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	d := newDialog()
	return l.newRequest(method, target, contentType, body, &d, nil)
}

// ErrTarget is returned for a target that is no SIP URI with a host.
var ErrTarget = errors.New("target is not a sip: or sips: URI with a host")

// complete makes a SIP URI of what a user dials, as a phone does: a
// number or user name gets the line's domain (or, without one, the
// primary server's), user@host the sip: scheme. A SIP URI is left as it is.
func (l *Line) complete(target string) string {
	target = strings.TrimSpace(target)
	if i := strings.IndexByte(target, ':'); target == "" || i >= 0 && !strings.Contains(target[:i], "@") {
		return target // a URI (sip:, sips: or another scheme checkTarget refuses)
	}
	if !strings.Contains(target, "@") {
		domain := l.cfg.Domain
		if domain == "" && len(l.cfg.Servers) > 0 {
			domain = uriHost(l.cfg.Servers[0].Addr)
		}
		target += "@" + domain
	}
	return "sip:" + target
}

// checkTarget accepts a sip: or sips: URI with a host, such as
// sip:1002@example.com.
func checkTarget(target string) error {
	var uri sip.Uri
	err := sip.ParseUri(target, &uri)
	if err == nil && (uri.Scheme == "sip" || uri.Scheme == "sips") && uri.Host != "" && !strings.ContainsAny(target, " \t\r\n") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("target %q: %w: %w", target, ErrTarget, err)
	}
	return fmt.Errorf("target %q: %w", target, ErrTarget)
}

// newRequest starts the request machine of one request and sends it; l.mu
// is held.
func (l *Line) newRequest(method sip.RequestMethod, target, contentType string, body []byte, d *dialog, call *Call) (*Request, error) {
	c := l.cfg
	r := &Request{line: l, method: method, target: target, contentType: contentType, body: body, dlg: d, call: call, done: make(chan struct{})}
	p := c.RequestParams()
	p.IsInvite = method == sip.INVITE
	if call != nil && method != sip.INVITE {
		// Through the dialog's server, while the line's list has it; one
		// the records no longer list goes like a new request (R20).
		if i := l.serverAt(call.server); i >= 0 {
			p.InDialog, p.FirstServer = true, i
		}
	}
	r.m = fsm.NewRequestMachine(p, nil)
	r.timers = clock.NewTimers[fsm.RequestTimer](l.agent.clock, &l.mu, l.agent.jitter, func(t fsm.RequestTimer) {
		if t == fsm.RequestTimerBudget && r.tx != nil {
			l.agent.net.Forget(r.tx.dst)
		}
		l.postReq(r, t.Event(), fmt.Sprintf("%s: %s timer ended", method, t))
		l.drain()
	})
	r.updateParams()
	effects, err := r.m.Start()
	if err != nil {
		return nil, err
	}
	r.perform(effects)
	l.requests = append(l.requests, r)
	if (call == nil || method == sip.INVITE) && l.cc == nil && l.m.State() == fsm.LineStateBackupRegistered {
		// A new request while on a lower-priority server: in failback mode
		// new_requests it probes the primary first, and waits (R18).
		l.post(fsm.LineEventRequestNew, string(method))
	}
	l.postReq(r, fsm.RequestEventUserSend, "")
	l.drain()
	return r, nil
}

// Done is closed when the request has ended.
func (r *Request) Done() <-chan struct{} { return r.done }

// Result is how the request ended; valid once Done is closed.
func (r *Request) Result() RequestResult {
	r.line.mu.Lock()
	defer r.line.mu.Unlock()
	return r.result
}

func (l *Line) postReq(r *Request, ev fsm.RequestEvent, reason string) {
	l.queue = append(l.queue, pending{req: r, rev: ev, reason: reason})
}

// updateParams copies the line's registration into the request's params.
func (r *Request) updateParams() {
	p := r.m.Params()
	st, server := r.line.view()
	p.LineRegistered = st.HasTag(fsm.LineTagRegistered)
	p.LineDown = !p.LineRegistered && !st.HasTag(fsm.LineTagTrying)
	p.LineServer = server
	p.ServerCount = len(r.line.targets)
	p.HoldForProbe = st == fsm.LineStateProbing && r.line.m.ByRequests()
	r.m.SetParams(p)
}

// tellRequests passes a step of the line on to its requests: the line
// registered, or moved to another server (line.registered), or can
// register nowhere (line.down).
func (l *Line) tellRequests(from, to fsm.LineState, moved bool) {
	if from == to && !moved {
		return
	}
	for _, r := range l.requests {
		r.updateParams()
		switch {
		case to.HasTag(fsm.LineTagRegistered):
			l.postReq(r, fsm.RequestEventLineRegistered, "")
		case to == fsm.LineStateAllFailed || to == fsm.LineStateFailed || to == fsm.LineStateIdle:
			l.postReq(r, fsm.RequestEventLineDown, "the line could not register: "+l.status.LastReason)
		}
	}
}

// fire delivers ev to the request's machine; l.mu is held.
func (r *Request) fire(ev fsm.RequestEvent, reason string) {
	if r.m.State().Final() {
		return // it ended; late news
	}
	switch ev {
	case fsm.RequestEventRespUnavailable, fsm.RequestEventTransportIcmp, fsm.RequestEventTransportTcp,
		fsm.RequestEventTimerBudget, fsm.RequestEventServerHeldOff:
		r.dead = append(r.dead, r.last)
	}
	p := r.m.Params()
	p.NextShared = r.line.sharesRegistrations(r.m.Vars().Server + 1)
	r.m.SetParams(p)
	step, err := r.m.Fire(ev)
	if err != nil {
		r.line.agent.log.Error("request event refused by the model", "line", r.line.cfg.Name, "method", string(r.method), "event", ev.String(), "err", err)
		return
	}
	if step.Ignored {
		return
	}
	if reason != "" {
		r.result.Reason = reason
	}
	r.perform(step.Effects)
	if step.To.Final() {
		r.result.State, r.result.Server, r.result.Ended = step.To.String(), r.m.Vars().Server+1, r.line.agent.clock.Now()
		r.end()
	}
}

func (r *Request) perform(effects []fsm.RequestEffect) {
	tx := r.tx
	for _, e := range effects {
		e.Run((*requestActions)(r), r.timers.Arm, r.timers.Cancel)
	}
	if r.tx != tx { // its budget counts from the first transmission (R21)
		r.timers.Extend(fsm.RequestTimerBudget, r.tx.pending(r.line.agent.clock.Now()))
	}
}

// end stops the request's timers and transaction, closes Done and tells
// its call.
func (r *Request) end() {
	r.timers.StopAll()
	r.line.finish(r.tx)
	r.line.requests = slices.DeleteFunc(r.line.requests, func(x *Request) bool { return x == r })
	select {
	case <-r.done:
		return
	default:
		close(r.done)
	}
	if r.call != nil {
		r.call.requestEnded(r)
	}
}

// provisional handles a 1xx: the server is alive. An INVITE stops
// retransmitting (RFC 3261 17.1.1.2) and its call rings; a non-INVITE goes
// on as before (17.1.2.2).
func (r *Request) provisional(t *txn, res *wire.Answer) {
	if r.method != sip.INVITE {
		return
	}
	if t.retrans != nil {
		t.retrans.Stop()
	}
	r.call.provisional(res)
	r.line.postReq(r, fsm.RequestEventRespProvisional, fmt.Sprintf("%d %s from %s", res.StatusCode, res.Reason, t.dst))
}

// answer handles a final response to the request's transaction.
func (r *Request) answer(t *txn, res *wire.Answer) {
	code := res.StatusCode
	r.result.Code = code
	reason := fmt.Sprintf("%d %s from %s", code, res.Reason, t.dst)
	if r.method == sip.INVITE {
		r.call.final(t, res)
	}
	switch {
	case code < 300:
		r.line.postReq(r, fsm.RequestEventResp2xx, reason)
	case code == sip.StatusUnauthorized || code == sip.StatusProxyAuthRequired:
		r.challenge = res
		r.line.postReq(r, fsm.RequestEventRespChallenge, reason)
	case slices.Contains(r.line.cfg.UnavailableCodes, code):
		r.line.noteRetryAfter(res, t.dst, &reason)
		r.line.postReq(r, fsm.RequestEventRespUnavailable, reason)
	default:
		r.line.postReq(r, fsm.RequestEventRespFinal, reason)
	}
}

// --- fsm.RequestActions ---

// requestActions performs the request model's actions for a Request; a
// type of its own, so that they are not a Request's API.
type requestActions Request

var _ fsm.RequestActions = (*requestActions)(nil)

func (r *Request) spec(server transport.Endpoint) requestSpec {
	s := r.line.spec(r.method, server, -1)
	s.target, s.contentType, s.body = r.target, r.contentType, r.body
	if r.call != nil && r.method != sip.INVITE {
		r.call.inDialog(&s, server, r.dead)
	}
	return s
}

func (r *Request) send(challenge *wire.Answer) {
	l := r.line
	server := r.m.Vars().Server
	dst := l.server(server)
	r.last = dst
	if dst == (transport.Endpoint{}) { // not located: the line is on none of its targets
		l.finish(r.tx)
		l.postReq(r, fsm.RequestEventServerHeldOff, fmt.Sprintf("%s: server %d of the line is not located", r.method, server))
		return
	}
	if held := l.heldOff(dst); held != "" {
		l.finish(r.tx)
		l.postReq(r, fsm.RequestEventServerHeldOff, held)
		return
	}
	s := r.spec(dst)
	if challenge != nil {
		ruri := s.requestURI()
		name, val, err := challenge.Credentials(s.method, ruri.String(), l.cfg.AuthUser, l.cfg.Password, 1)
		if err != nil {
			l.postReq(r, fsm.RequestEventRespFinal, fmt.Sprintf("cannot answer the challenge of %s: %v", dst, err))
			return
		}
		s.auth, s.authVal = name, val
	}
	refused := fsm.RequestEventTransportTcp
	if dst.Transport == settings.TransportUDP {
		refused = fsm.RequestEventTransportIcmp
	}
	t := l.start(&r.tx, txnRequest, r.dlg, s, server, r.m.MaxTransmissions(), func(reason string) { l.postReq(r, refused, reason) })
	if t.live {
		t.owner = r
		if r.method == sip.INVITE {
			r.call.lastInvite, r.call.server = t, dst
		}
	}
}

// SendRequest sends the request to its server (a new transaction).
func (a *requestActions) SendRequest() {
	r := (*Request)(a)
	r.challenge = nil
	r.send(nil)
}

// SendRequestAuth resends it with digest credentials for the challenge.
func (a *requestActions) SendRequestAuth() {
	r := (*Request)(a)
	r.send(r.challenge)
}

// AbandonRequest forgets the transaction in flight.
func (a *requestActions) AbandonRequest() {
	r := (*Request)(a)
	r.line.finish(r.tx)
}

// SendCancel cancels the request's transaction (RFC 3261 section 9.1): the
// same Request-URI, route, Call-ID, tags, CSeq number and branch.
func (a *requestActions) SendCancel() {
	r := (*Request)(a)
	t := r.tx
	if t == nil {
		return
	}
	msg, err := wire.Parse(t.msg)
	req, ok := msg.(*sip.Request)
	if err != nil || !ok {
		return
	}
	cancel := wire.CancelOf(req)
	r.line.agent.net.Send(t.dst, []byte(cancel.String()))
}

// LineFailover tells the line its server is unavailable (R6, R7, R8); in
// concurrent mode, the binding on the request's server (R17).
func (a *requestActions) LineFailover() {
	r := (*Request)(a)
	reason := fmt.Sprintf("%s: %s", r.method, r.result.Reason)
	if cc := r.line.cc; cc != nil {
		if b := cc.at(r.m.Vars().Server); b != nil {
			r.line.postBinding(b, fsm.BindingEventRequestUnavailable, reason)
		}
		return
	}
	var since time.Time
	if r.tx != nil {
		since = r.tx.began
	}
	r.line.postSince(fsm.LineEventRequestUnavailable, reason, since)
}
