package runtime

import (
	"cmp"
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

// Call is one call of a line, placed with Line.Dial or delivered by any of
// the line's servers, driven by the generated machine of model/call.yaml.
// Its INVITE and BYE each run on a request machine (model/request.yaml),
// which decides where they go: the INVITE only to a server the line is
// registered on (I5), the BYE through the server the dialog was set up
// through first (R16, I10), each failing over with the line (R6, R7). A
// call shares its line's lock and event queue. It implements
// fsm.CallActions.
type Call struct {
	line   *Line
	m      *fsm.CallMachine
	timers clock.Timers[fsm.CallTimer]

	dlg          dialog // Call-ID, our tag, our CSeq
	remote       string // the far end's URI: To of our INVITE, From of theirs
	remoteTag    string
	remoteTarget string             // the far end's Contact
	routes       []string           // the route set, in the order Route headers take
	server       transport.Endpoint // the server the dialog goes through (R16, I10)
	info         CallInfo

	invite     *Request // an outgoing call's INVITE
	lastInvite *txn     // its latest transaction, for the ACK of a late final answer
	ack        []byte   // the ACK of our 2xx, sent again if the 2xx is
	ackDst     transport.Endpoint

	// A delivered call: its INVITE, our 200 OK (sent again until the ACK,
	// RFC 3261 13.3.1.4), and the far end's BYE while it is answered.
	inviteReq *sip.Request
	from      transport.Endpoint
	reply     func([]byte)
	answer    []byte
	retrans   Timer
	byeReq    *sip.Request
	byeReply  func([]byte)
	offerHost string // our address in the SDP offer

	done chan struct{}
}

// CallInfo is what a call reports.
type CallInfo struct {
	ID         string    `json:"id"` // the Call-ID
	Line       string    `json:"line"`
	Outgoing   bool      `json:"outgoing"`
	Remote     string    `json:"remote"` // the far end's URI
	State      string    `json:"state"`  // a state of model/call.yaml
	Server     int       `json:"server"` // the server the dialog goes through (once ended by a BYE, the one that answered it): its number, from 1; 0 when not in the line's list
	ServerAddr string    `json:"server_addr"`
	Code       int       `json:"code"`   // the INVITE's final answer, 0 before one
	Reason     string    `json:"reason"` // why it ended, or the last answer
	Started    time.Time `json:"started"`
	Answered   time.Time `json:"answered,omitzero"` // absent until answered
	Ended      time.Time `json:"ended,omitzero"`    // absent until it ends
}

// Dial places a call to target and returns at once: a SIP URI, or a number
// or user name (completed with the line's domain, as a phone does), or
// user@host. The INVITE goes to the server the line is registered on, or
// waits until the line has registered somewhere, and fails over with the
// line (R6). Done is closed when the call ends.
func (l *Line) Dial(target string) (*Call, error) {
	target = l.complete(target)
	if err := checkTarget(target); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c, err := l.newCall(newDialog(), target, true)
	if err != nil {
		return nil, err
	}
	c.offerHost, _ = l.agent.net.Local(l.anyServer())
	c.post(fsm.CallEventUserDial, "")
	l.drain()
	return c, nil
}

// newCall makes a call and files it with the line and the agent; l.mu is
// held.
func (l *Line) newCall(d dialog, remote string, outgoing bool) (*Call, error) {
	c := &Call{line: l, dlg: d, remote: remote, done: make(chan struct{})}
	c.m = fsm.NewCallMachine(l.cfg.CallParams(), nil)
	c.timers = clock.NewTimers[fsm.CallTimer](l.agent.clock, &l.mu, l.agent.jitter, func(t fsm.CallTimer) {
		reason := ""
		switch t {
		case fsm.CallTimerAckWait:
			reason = "no ACK to our 200 OK within 64*T1"
		case fsm.CallTimerMaxDuration:
			reason = fmt.Sprintf("up for max_call_duration (%v)", time.Duration(l.cfg.MaxCallDuration))
		}
		c.post(t.Event(), reason)
		l.drain()
	})
	effects, err := c.m.Start()
	if err != nil {
		return nil, err
	}
	c.perform(effects)
	c.info = CallInfo{ID: d.callID, Line: l.cfg.Name, Outgoing: outgoing, Remote: remote, Started: l.agent.clock.Now()}
	l.calls = append(l.calls, c)
	l.agent.fileCall(c)
	return c, nil
}

// Calls returns the line's calls that have not ended.
func (l *Line) Calls() []*Call {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// Done is closed when the call has ended.
func (c *Call) Done() <-chan struct{} { return c.done }

// ID is the call's Call-ID.
func (c *Call) ID() string { return c.dlg.callID }

// State is where the call stands.
func (c *Call) State() fsm.CallState {
	c.line.mu.Lock()
	defer c.line.mu.Unlock()
	return c.m.State()
}

// Info returns what the call reports now.
func (c *Call) Info() CallInfo {
	c.line.mu.Lock()
	defer c.line.mu.Unlock()
	return c.snapshot()
}

func (c *Call) snapshot() CallInfo {
	i := c.info
	i.State, i.Server, i.ServerAddr = c.m.State().String(), c.line.serverAt(c.server)+1, c.server.String()
	return i
}

// Hangup ends the call: one not yet answered is given up (cancelled once
// it rings), an answered one gets a BYE, which fails over if its server is
// unavailable (R7).
func (c *Call) Hangup() {
	l := c.line
	l.mu.Lock()
	defer l.mu.Unlock()
	reason := "the user hangs up"
	if st := c.m.State(); st == fsm.CallStateDialing || st == fsm.CallStateRinging {
		reason = "cancelled by the user"
	}
	c.post(fsm.CallEventUserHangup, reason)
	l.drain()
}

// post queues an event for the call's machine; l.mu is held.
func (c *Call) post(ev fsm.CallEvent, reason string) {
	c.line.queue = append(c.line.queue, pending{call: c, cev: ev, reason: reason})
}

// fire delivers ev to the call's machine; l.mu is held.
func (c *Call) fire(ev fsm.CallEvent, reason string) {
	if c.m.State().Final() {
		return // it ended; late news
	}
	step, err := c.m.Fire(ev)
	if err != nil {
		c.line.agent.log.Error("call event refused by the model", "line", c.line.cfg.Name, "call", c.dlg.callID, "event", ev.String(), "err", err)
		return
	}
	if step.Ignored {
		return
	}
	if reason != "" {
		c.info.Reason = reason
	}
	if step.To == fsm.CallStateConfirmed && step.From != step.To {
		c.info.Answered = c.line.agent.clock.Now()
	}
	c.perform(step.Effects)
	if step.From != step.To {
		i := c.snapshot()
		c.line.agent.log.Info("call transition", "line", c.line.cfg.Name, "call", i.ID, "remote", i.Remote, "outgoing", i.Outgoing,
			"from", step.From.String(), "to", step.To.String(), "event", ev.String(), "server", i.Server, "addr", i.ServerAddr, "reason", i.Reason)
		if w := c.line.agent.callWatch; w != nil {
			w(i)
		}
	}
	if holds(step.From) && !holds(step.To) && !c.line.callsUp() {
		c.line.post(fsm.LineEventCallsEnded, "the line's last call ended")
	}
}

// holds says whether a call in state st has a dialog, or is answering one:
// while one does, a line whose failback waits for idle stays where it is
// (R18).
func holds(st fsm.CallState) bool {
	return st != fsm.CallStateIdle && st != fsm.CallStateDialing && !st.Final()
}

// callsUp says whether a call of the line holds it; l.mu is held.
func (l *Line) callsUp() bool {
	return slices.ContainsFunc(l.calls, func(c *Call) bool { return holds(c.m.State()) })
}

// syncCallsUp tells the line model whether a call holds the line.
func (l *Line) syncCallsUp() {
	if p := l.m.Params(); p.CallsUp != l.callsUp() {
		p.CallsUp = !p.CallsUp
		l.m.SetParams(p)
	}
}

func (c *Call) perform(effects []fsm.CallEffect) {
	for _, e := range effects {
		e.Run((*callActions)(c), c.timers.Arm, c.timers.Cancel)
	}
}

// requestEnded hears that the call's INVITE or BYE ended.
func (c *Call) requestEnded(r *Request) {
	res := r.result
	switch {
	case r.method == sip.BYE && res.State == "failed":
		c.post(fsm.CallEventByeEnded, "the BYE reached no server: "+res.Reason)
	case r.method == sip.BYE:
		// The call ended through the server that answered its BYE: the
		// dialog's, or the one it failed over to (R7).
		c.server = r.last
		c.post(fsm.CallEventByeEnded, fmt.Sprintf("hung up (BYE answered %d by %s)", res.Code, r.last))
	case res.Code >= 200 && res.Code < 300: // invite.answered was posted with the 2xx
	case res.State == "failed":
		c.post(fsm.CallEventInviteEnded, "no server could carry the call: "+res.Reason)
	case res.Code >= 300:
		c.post(fsm.CallEventInviteEnded, res.Reason)
	default:
		c.post(fsm.CallEventInviteEnded, "no final answer: "+res.Reason)
	}
}

// provisional hears a 1xx to the INVITE.
func (c *Call) provisional(res *wire.Answer) {
	if res.StatusCode > 100 {
		c.post(fsm.CallEventInviteProvisional, "")
	}
}

// final hears the INVITE's final answer through t, and acknowledges it: a
// 2xx with an ACK of its own through the dialog's route set (RFC 3261
// 13.2.2.4), anything else with an ACK in its transaction (17.1.1.3).
func (c *Call) final(t *txn, res *wire.Answer) {
	c.info.Code = res.StatusCode
	reason := fmt.Sprintf("%d %s from %s", res.StatusCode, res.Reason, t.dst)
	if res.StatusCode >= 300 {
		c.ackFailure(t, res)
		return
	}
	c.establish(t, res)
	c.post(fsm.CallEventInviteAnswered, reason)
}

// establish takes the dialog from a 2xx to the INVITE sent in t and sends
// its ACK.
func (c *Call) establish(t *txn, res *wire.Answer) {
	c.server = t.dst
	c.remoteTag = res.ToTag
	c.remoteTarget = cmp.Or(res.Target(), c.remote)
	c.routes = slices.Clone(res.Routes)
	slices.Reverse(c.routes) // the UAC reverses them (12.1.2)
	spec := c.line.spec(sip.ACK, c.server, -1)
	c.inDialog(&spec, c.server, nil)
	c.ack, c.ackDst = c.buildAck(spec, res.CSeq), t.dst
	c.line.agent.net.Send(c.ackDst, c.ack)
}

// lateFinal hears a final answer to an INVITE transaction the call no
// longer waits for: a retransmitted 2xx gets the ACK again; a 2xx to a
// call the user gave up on gets an ACK and a BYE; anything else its ACK.
func (c *Call) lateFinal(res *wire.Answer) {
	t := c.lastInvite
	switch {
	case t == nil:
	case res.StatusCode >= 300:
		c.ackFailure(t, res)
	case c.ack != nil:
		c.line.agent.net.Send(c.ackDst, c.ack)
	case c.m.State() == fsm.CallStateEnded:
		// Given up, yet answered: take the dialog up and end it at once.
		c.establish(t, res)
		(*callActions)(c).SendBye()
	}
}

// --- fsm.CallActions ---

// callActions performs the call model's actions for a Call; a type of
// its own, so that they are not a Call's API.
type callActions Call

var _ fsm.CallActions = (*callActions)(nil)

// SendInvite starts the INVITE's request machine (R6, I5).
func (a *callActions) SendInvite() {
	c := (*Call)(a)
	r, err := c.line.newRequest(sip.INVITE, c.remote, "application/sdp", sdp(c.offerHost, c.dlg.callID), &c.dlg, c)
	if err != nil {
		c.post(fsm.CallEventInviteEnded, "INVITE: "+err.Error())
		return
	}
	c.invite = r
}

// CancelInvite gives the INVITE up (a CANCEL once it rings).
func (a *callActions) CancelInvite() {
	c := (*Call)(a)
	if c.invite != nil {
		c.line.postReq(c.invite, fsm.RequestEventUserCancel, "cancelled by the user")
	}
}

// AnswerInvite answers the delivered INVITE with 200 OK and an SDP answer,
// and sends it again over UDP until the ACK (RFC 3261 13.3.1.4).
func (a *callActions) AnswerInvite() {
	c := (*Call)(a)
	l, req := c.line, c.inviteReq
	host, port := l.agent.net.Local(c.from)
	contact := fmt.Sprintf("sip:%s@%s;transport=%s", l.cfg.User, transport.Endpoint{Host: host, Port: port}.Addr(), strings.ToLower(c.from.TransportName()))
	res := wire.AnswerInvite(req, c.dlg.tag, contact, sdp(host, c.dlg.callID))
	c.answer = []byte(res.String())
	c.info.Code = 200
	c.reply(c.answer)
	c.scheduleAnswer(time.Duration(l.cfg.T1))
}

// scheduleAnswer sends the 200 OK again over UDP at T1, 2*T1 ... capped at
// T2 until StopAnswer.
func (c *Call) scheduleAnswer(wait time.Duration) {
	if c.from.Transport != settings.TransportUDP {
		return
	}
	l := c.line
	c.retrans = l.agent.clock.AfterFunc(wait, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if c.m.State() == fsm.CallStateAnswering {
			c.reply(c.answer)
			c.scheduleAnswer(min(2*wait, time.Duration(l.cfg.T2)))
		}
	})
}

// StopAnswer stops sending the 200 OK again.
func (a *callActions) StopAnswer() {
	c := (*Call)(a)
	if c.retrans != nil {
		c.retrans.Stop()
	}
}

// SendBye starts the BYE's request machine (R7, I10).
func (a *callActions) SendBye() {
	c := (*Call)(a)
	if _, err := c.line.newRequest(sip.BYE, c.remoteTarget, "", nil, &c.dlg, c); err != nil {
		c.post(fsm.CallEventByeEnded, "BYE: "+err.Error())
	}
}

// AnswerBye answers the far end's BYE with 200 OK.
func (a *callActions) AnswerBye() {
	c := (*Call)(a)
	if c.byeReq != nil {
		c.respond(c.byeReq, c.byeReply, 200, "OK")
		c.byeReq, c.byeReply = nil, nil
	}
}

// EndCall reports the call over and forgets it.
func (a *callActions) EndCall() {
	c := (*Call)(a)
	l := c.line
	c.info.Ended = l.agent.clock.Now()
	c.timers.StopAll()
	l.calls = slices.DeleteFunc(l.calls, func(x *Call) bool { return x == c })
	if c.lastInvite != nil && c.ack == nil {
		// A call given up before its final answer: the 487 (or a 200 that
		// crossed the CANCEL) still needs its ACK, for up to 64*T1.
		l.agent.clock.AfterFunc(64*time.Duration(l.cfg.T1), func() { l.agent.dropCall(c) })
	} else {
		l.agent.dropCall(c)
	}
	close(c.done)
}

// --- delivered calls and in-dialog requests ---

// incoming answers an INVITE that the server at from delivered for this
// line (R5: from any of its servers). The agent's answer policy decides:
// 200 with an SDP answer, or a rejection.
func (l *Line) incoming(from transport.Endpoint, req *sip.Request, reply func([]byte)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.serverAt(from) < 0 {
		reply([]byte(wire.Reply(req, 403, "Forbidden", "", nil).String()))
		return
	}
	callID, remoteTag, _ := wire.DialogOf(req)
	remote := req.From().Address.String()
	code := 200
	if policy := l.agent.answerPolicy; policy != nil {
		code = policy(l.cfg.Name, remote)
	}
	incoming := 0
	for _, c := range l.calls {
		if !c.info.Outgoing {
			incoming++
		}
	}
	if incoming >= *l.cfg.MaxIncomingCalls || !l.agent.roomForCall() {
		l.agent.counters.rejectedCalls.Add(1)
		code = 486
	}
	tag := wire.Token(6)
	if code >= 300 {
		reply([]byte(wire.Reply(req, code, rejectReasons[code], tag, nil).String()))
		return
	}
	c, err := l.newCall(dialog{callID: callID, tag: tag}, remote, false)
	if err != nil {
		reply([]byte(wire.Reply(req, 500, "Server Internal Error", "", nil).String()))
		return
	}
	c.server, c.remoteTag, c.from, c.reply, c.inviteReq = from, remoteTag, from, reply, req
	c.remoteTarget = remote
	if ct := req.Contact(); ct != nil {
		c.remoteTarget = ct.Address.String()
	}
	c.routes = wire.RecordRoutes(req) // the UAS keeps their order (12.1.1)
	c.post(fsm.CallEventIncomingInvite, "")
	l.drain()
}

// respond answers a request of the call's dialog, with our tag in To.
func (c *Call) respond(req *sip.Request, reply func([]byte), code int, reason string) {
	reply([]byte(wire.Reply(req, code, reason, c.dlg.tag, nil).String()))
}

// inDialogRequest handles a request of the call's dialog from a server.
func (c *Call) inDialogRequest(from transport.Endpoint, req *sip.Request, reply func([]byte)) {
	l := c.line
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case req.Method == sip.ACK:
		c.post(fsm.CallEventAck, "")
		l.drain()
	case c.m.State().Final():
		c.respond(req, reply, 481, "Call/Transaction Does Not Exist")
	case req.Method == sip.INVITE && c.answer != nil && req.CSeq().SeqNo == c.inviteReq.CSeq().SeqNo: // typed by the edge's checks
		reply(c.answer) // a retransmission of the INVITE we answered
	case req.Method == sip.BYE:
		c.byeReq, c.byeReply = req, reply
		c.post(fsm.CallEventRemoteBye, "the far end hung up (BYE through "+from.String()+")")
		l.drain()
		if c.byeReq != nil { // the machine did not take it
			c.respond(req, reply, 481, "Call/Transaction Does Not Exist")
			c.byeReq, c.byeReply = nil, nil
		}
	case req.Method == sip.CANCEL, req.Method == sip.OPTIONS:
		c.respond(req, reply, 200, "OK") // answered already: a CANCEL has no effect (9.2)
	default:
		c.respond(req, reply, 501, "Not Implemented") // no media to renegotiate
	}
}
