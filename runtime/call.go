package runtime

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipfailover/sipfailover/fsm"
)

// CallState is where a call stands. The failover decisions of its INVITE
// and BYE are the request machine's (model/request.yaml); the call only
// keeps the dialog they belong to.
type CallState uint8

const (
	// CallUnknown is the zero value; no call is in it.
	CallUnknown CallState = iota
	// CallDialing: the INVITE is in flight within its budget, or waits for
	// the line to register on the next server (R6, I5).
	CallDialing
	// CallRinging: the INVITE got a 1xx; the far end is alerted.
	CallRinging
	// CallAnswering: an incoming call was answered with 200 OK, which is
	// retransmitted until the ACK comes (RFC 3261 13.3.1.4).
	CallAnswering
	// CallConfirmed: the call is up.
	CallConfirmed
	// CallEnding: the BYE is in flight, failing over if it must (R7).
	CallEnding
	// CallEnded: the call is over; CallInfo.Reason says why.
	CallEnded
)

var callStateNames = [...]string{"unknown", "dialing", "ringing", "answering", "confirmed", "ending", "ended"}

func (s CallState) String() string {
	if int(s) < len(callStateNames) {
		return callStateNames[s]
	}
	return "CallState(" + strconv.Itoa(int(s)) + ")"
}

// Call is one call of a line, placed with Line.Dial or received from any
// of the line's servers. Its in-dialog requests go through the server the
// dialog was set up through (R16, I10); a BYE that finds that server
// unavailable fails over with the line (R7).
type Call struct {
	line *Line

	dlg          dialog // Call-ID, our tag, our CSeq
	remote       string // the far end's URI: To of our INVITE, From of theirs
	remoteTag    string
	remoteTarget string   // the far end's Contact
	routes       []string // the route set, in the order Route headers take
	server       int      // the server the dialog goes through (R16, I10)
	state        CallState
	info         CallInfo

	invite     *Request // an outgoing call's INVITE
	lastInvite *txn     // its latest transaction, for the ACK of a late final answer
	bye        *Request
	ack        []byte // the ACK of our 2xx, sent again if the 2xx is
	ackDst     Endpoint

	// An incoming call's 200 OK, retransmitted until the ACK (RFC 3261
	// 13.3.1.4), and its INVITE's CSeq to know a retransmission.
	answer      []byte
	reply       func([]byte)
	inviteCSeq  uint32
	retrans     Timer
	giveUp      Timer
	hangupOnAck bool

	done chan struct{}
}

// CallInfo is what a call reports.
type CallInfo struct {
	ID         string    `json:"id"` // the Call-ID
	Line       string    `json:"line"`
	Outgoing   bool      `json:"outgoing"`
	Remote     string    `json:"remote"` // the far end's URI
	State      string    `json:"state"`
	Server     int       `json:"server"` // the server the dialog goes through
	ServerAddr string    `json:"server_addr"`
	Code       int       `json:"code"`   // the INVITE's final answer, 0 before one
	Reason     string    `json:"reason"` // why it ended, or the last answer
	Started    time.Time `json:"started"`
	Answered   time.Time `json:"answered"`
	Ended      time.Time `json:"ended"`
}

// ErrNoCall is returned for a call that is not (or no longer) there.
var ErrNoCall = errors.New("no such call")

// Dial places a call to target (a SIP URI) and returns at once: the INVITE
// goes to the server the line is registered on, or waits until the line
// has registered somewhere, and fails over with the line (R6). Done is
// closed when the call ends.
func (l *Line) Dial(target string) (*Call, error) {
	if err := checkTarget(target); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.newCall(newDialog(), target, true)
	c.server = l.m.Vars().Server
	c.setState(CallDialing)
	host, _ := l.agent.net.Local(l.servers[l.m.Vars().Server])
	r, err := l.newRequest(sip.INVITE, target, "application/sdp", sdp(host, c.dlg.callID), &c.dlg, c)
	if err != nil {
		c.end(0, err.Error())
		return nil, err
	}
	if c.state != CallEnded {
		c.invite = r
	}
	return c, nil
}

// newCall makes a call and files it with the line and the agent; the
// caller sets its first state. l.mu is held.
func (l *Line) newCall(d dialog, remote string, outgoing bool) *Call {
	c := &Call{line: l, dlg: d, remote: remote, done: make(chan struct{})}
	c.info = CallInfo{ID: d.callID, Line: l.cfg.Name, Outgoing: outgoing, Remote: remote, Started: l.agent.clock.Now()}
	l.calls = append(l.calls, c)
	l.agent.fileCall(c)
	return c
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
func (c *Call) State() CallState {
	c.line.mu.Lock()
	defer c.line.mu.Unlock()
	return c.state
}

// Info returns what the call reports now.
func (c *Call) Info() CallInfo {
	c.line.mu.Lock()
	defer c.line.mu.Unlock()
	return c.snapshot()
}

func (c *Call) snapshot() CallInfo {
	i := c.info
	i.State, i.Server, i.ServerAddr = c.state.String(), c.server, c.line.servers[c.server].String()
	return i
}

// Hangup ends the call: a call not yet answered is cancelled, an answered
// one gets a BYE, which fails over if its server is unavailable (R7).
func (c *Call) Hangup() {
	l := c.line
	l.mu.Lock()
	defer l.mu.Unlock()
	switch c.state {
	case CallDialing, CallRinging:
		c.info.Reason = "cancelled by the user"
		l.postReq(c.invite, fsm.RequestEventUserCancel, "cancelled by the user")
		l.drain()
	case CallAnswering:
		c.hangupOnAck = true // no BYE before the ACK (RFC 3261 15)
	case CallConfirmed:
		c.info.Reason = "the user hangs up"
		c.sendBye()
		l.drain()
	}
}

// sendBye starts the BYE; l.mu is held, and the caller drains.
func (c *Call) sendBye() {
	c.setState(CallEnding)
	r, err := c.line.newRequest(sip.BYE, c.remoteTarget, "", nil, &c.dlg, c)
	if err != nil {
		c.end(0, "BYE: "+err.Error())
		return
	}
	if c.state == CallEnding {
		c.bye = r
	}
}

func (c *Call) setState(s CallState) {
	if c.state == s {
		return
	}
	c.state = s
	if s == CallConfirmed {
		c.info.Answered = c.line.agent.clock.Now()
	}
	if w := c.line.agent.callWatch; w != nil {
		w(c.snapshot())
	}
}

// end closes the call; l.mu is held.
func (c *Call) end(code int, reason string) {
	if c.state == CallEnded {
		return
	}
	if code != 0 {
		c.info.Code = code
	}
	if reason != "" {
		c.info.Reason = reason
	}
	c.info.Ended = c.line.agent.clock.Now()
	c.stopAnswer()
	c.line.calls = slices.DeleteFunc(c.line.calls, func(x *Call) bool { return x == c })
	if c.lastInvite != nil && c.ack == nil {
		// A call given up before its final answer: the 487 (or a 200 that
		// crossed the CANCEL) still needs its ACK, for up to 64*T1.
		c.line.agent.clock.AfterFunc(64*time.Duration(c.line.cfg.T1), func() { c.line.agent.dropCall(c) })
	} else {
		c.line.agent.dropCall(c)
	}
	c.setState(CallEnded)
	close(c.done)
}

// requestEnded hears that the call's INVITE or BYE ended.
func (c *Call) requestEnded(r *Request) {
	res := r.result
	if r.method == sip.BYE {
		switch {
		case res.State == "failed":
			c.end(0, "the BYE reached no server: "+res.Reason)
		default:
			c.end(0, fmt.Sprintf("hung up (BYE answered %d by %s)", res.Code, c.line.servers[res.Server]))
		}
		return
	}
	switch {
	case c.state == CallConfirmed:
	case res.State == "failed":
		c.end(0, "no server could carry the call: "+res.Reason)
	case res.Code >= 300:
		c.end(res.Code, res.Reason)
	case c.info.Reason != "":
		c.end(0, "")
	default:
		c.end(0, "no final answer: "+res.Reason)
	}
}

// provisional hears a 1xx to the INVITE.
func (c *Call) provisional(res *sip.Response) {
	if c.state == CallDialing && res.StatusCode > 100 {
		c.setState(CallRinging)
	}
}

// final hears the INVITE's final answer through t, and acknowledges it: a
// 2xx with an ACK of its own through the dialog's route set (RFC 3261
// 13.2.2.4), anything else with an ACK in its transaction (17.1.1.3).
func (c *Call) final(t *txn, res *sip.Response) {
	c.info.Code = res.StatusCode
	c.info.Reason = fmt.Sprintf("%d %s from %s", res.StatusCode, res.Reason, t.dst)
	if res.StatusCode >= 300 {
		c.ackFailure(t, res)
		return
	}
	c.establish(t, res)
	c.setState(CallConfirmed)
}

// establish takes the dialog from a 2xx to the INVITE sent in t and sends
// its ACK.
func (c *Call) establish(t *txn, res *sip.Response) {
	c.server = t.server
	if to := res.To(); to != nil {
		c.remoteTag, _ = to.Params.Get("tag")
	}
	c.remoteTarget = c.remote
	if ct := res.Contact(); ct != nil {
		c.remoteTarget = ct.Address.String()
	}
	c.routes = nil
	rr := res.GetHeaders("Record-Route")
	for i := len(rr) - 1; i >= 0; i-- { // the UAC reverses them (12.1.2)
		c.routes = append(c.routes, splitHeaderValues(rr[i].Value())...)
	}
	spec := c.line.spec(sip.ACK, c.server, -1)
	c.inDialog(&spec, 0)
	c.ack, c.ackDst = c.buildAck(spec, res.CSeq().SeqNo), t.dst
	c.line.agent.net.Send(c.ackDst, c.ack)
}

// lateFinal hears a final answer to an INVITE transaction the call no
// longer waits for: a retransmitted 2xx gets the ACK again; a 2xx to a
// call the user gave up on gets an ACK and a BYE; anything else its ACK.
func (c *Call) lateFinal(res *sip.Response) {
	t := c.lastInvite
	switch {
	case t == nil:
	case res.StatusCode >= 300:
		c.ackFailure(t, res)
	case c.ack != nil:
		c.line.agent.net.Send(c.ackDst, c.ack)
	case c.state == CallEnded:
		// Cancelled, yet answered: take the dialog up and end it at once.
		c.establish(t, res)
		c.line.newRequest(sip.BYE, c.remoteTarget, "", nil, &c.dlg, c)
	}
}

// ackFailure acknowledges a final failure to the INVITE sent in t: the
// same Request-URI, Via, From, Call-ID and CSeq number, the To of the
// answer (RFC 3261 17.1.1.3).
func (c *Call) ackFailure(t *txn, res *sip.Response) {
	msg, err := sip.ParseMessage(t.msg)
	req, ok := msg.(*sip.Request)
	if err != nil || !ok {
		return
	}
	ack := sip.NewRequest(sip.ACK, req.Recipient)
	for _, h := range []string{"Via", "Route", "From", "Call-ID"} {
		for _, v := range req.GetHeaders(h) {
			ack.AppendHeader(sip.NewHeader(h, v.Value()))
		}
	}
	if to := res.To(); to != nil {
		ack.AppendHeader(sip.NewHeader("To", to.Value()))
	}
	ack.AppendHeader(sip.NewHeader("CSeq", strconv.Itoa(int(req.CSeq().SeqNo))+" ACK"))
	ack.AppendHeader(sip.NewHeader("Max-Forwards", "70"))
	ack.AppendHeader(sip.NewHeader("Content-Length", "0"))
	c.line.agent.net.Send(t.dst, []byte(ack.String()))
}

// buildAck writes the ACK of a 2xx: a new branch, the INVITE's CSeq
// number, through the route set.
func (c *Call) buildAck(s requestSpec, seq uint32) []byte {
	d := c.dlg
	d.cseq = seq - 1 // build adds one
	msg, _ := s.build(&d)
	return msg
}

// inDialog fills s for a request of the dialog: the remote target, the
// remote tag and the route set less the entries of servers in dead, which
// were found unavailable (R7).
func (c *Call) inDialog(s *requestSpec, dead uint8) {
	s.remoteTarget = c.remoteTarget
	s.to = "<" + c.remote + ">"
	if c.remoteTag != "" {
		s.to += ";tag=" + c.remoteTag
	}
	s.routes = nil
	for _, r := range c.routes {
		if i := c.line.serverOf(r); i >= 0 && dead&(1<<i) != 0 {
			continue
		}
		s.routes = append(s.routes, r)
	}
}

// serverOf returns the index of the server a Route or Record-Route entry
// names, or -1.
func (l *Line) serverOf(route string) int {
	var a sip.Uri
	v := strings.TrimSpace(route)
	v = strings.TrimSuffix(strings.TrimPrefix(v, "<"), ">")
	if err := sip.ParseUri(v, &a); err != nil {
		return -1
	}
	for i, s := range l.servers {
		port := a.Port
		if port == 0 {
			port = 5060
			if s.Transport == TransportTLS {
				port = 5061
			}
		}
		if strings.EqualFold(a.Host, s.Host) && port == s.Port {
			return i
		}
	}
	return -1
}

// splitHeaderValues splits a header value that lists several entries
// ("<sip:a;lr>, <sip:b;lr>") into them.
func splitHeaderValues(v string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range v {
		switch r {
		case '<':
			depth++
		case '>':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(v[start:i]))
				start = i + 1
			}
		}
	}
	if rest := strings.TrimSpace(v[start:]); rest != "" {
		out = append(out, rest)
	}
	return out
}

// sdp is a minimal valid session description (RFC 4566) for an offer or
// an answer: one audio stream, inactive, since sipfailover carries
// signalling only and no media.
func sdp(host, session string) []byte {
	id := uint32(0)
	for _, b := range []byte(session) {
		id = id*31 + uint32(b)
	}
	ip := "IP4"
	if strings.Contains(host, ":") {
		ip = "IP6"
	}
	return []byte(fmt.Sprintf("v=0\r\no=sipfailover %d 1 IN %s %s\r\ns=sipfailover\r\nc=IN %s %s\r\nt=0 0\r\n"+
		"m=audio 9 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=inactive\r\n", id, ip, host, ip, host))
}

// --- incoming calls and in-dialog requests ---

// incoming answers an INVITE that the server at from delivered for this
// line (R5: from any of its servers). The agent's answer policy decides:
// 200 with an SDP answer, or a rejection.
func (l *Line) incoming(from Endpoint, req *sip.Request, reply func([]byte)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	server := l.serverAt(from)
	if server < 0 {
		reply([]byte(sip.NewResponseFromRequest(req, 403, "Forbidden", nil).String()))
		return
	}
	fromHdr := req.From()
	remoteTag, _ := fromHdr.Params.Get("tag")
	remote := fromHdr.Address.String()
	code := 200
	if policy := l.agent.answerPolicy; policy != nil {
		code = policy(l.cfg.Name, remote)
	}
	tag := randomToken(6)
	if code >= 300 {
		res := sip.NewResponseFromRequest(req, code, rejectReasons[code], nil)
		res.To().Params.Add("tag", tag)
		reply([]byte(res.String()))
		return
	}
	c := l.newCall(dialog{callID: req.CallID().Value(), tag: tag}, remote, false)
	c.server, c.remoteTag, c.reply, c.inviteCSeq = server, remoteTag, reply, req.CSeq().SeqNo
	c.remoteTarget = remote
	if ct := req.Contact(); ct != nil {
		c.remoteTarget = ct.Address.String()
	}
	for _, rr := range req.GetHeaders("Record-Route") { // the UAS keeps their order (12.1.1)
		c.routes = append(c.routes, splitHeaderValues(rr.Value())...)
	}
	host, port := l.agent.net.Local(from)
	res := sip.NewResponseFromRequest(req, 200, "OK", sdp(host, c.dlg.callID))
	res.To().Params.Add("tag", tag)
	res.AppendHeader(sip.NewHeader("Contact", fmt.Sprintf("<sip:%s@%s;transport=%s>", l.cfg.User,
		Endpoint{Host: host, Port: port}.Addr(), strings.ToLower(from.TransportName()))))
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	c.answer = []byte(res.String())
	c.info.Code = 200
	c.setState(CallAnswering)
	reply(c.answer)
	c.scheduleAnswer(from, time.Duration(l.cfg.T1))
	t1 := time.Duration(l.cfg.T1)
	c.giveUp = l.agent.clock.AfterFunc(64*t1, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if c.state == CallAnswering { // no ACK: confirm and end it (13.3.1.4)
			c.stopAnswer()
			c.setState(CallConfirmed)
			c.info.Reason = "no ACK to our 200 OK within 64*T1"
			c.sendBye()
			l.drain()
		}
	})
}

// rejectReasons are the reason phrases of the usual rejections.
var rejectReasons = map[int]string{403: "Forbidden", 404: "Not Found", 480: "Temporarily Unavailable",
	486: "Busy Here", 488: "Not Acceptable Here", 600: "Busy Everywhere", 603: "Decline"}

// scheduleAnswer retransmits the 200 OK over UDP at T1, 2*T1 ... capped at
// T2 until the ACK comes (RFC 3261 13.3.1.4).
func (c *Call) scheduleAnswer(from Endpoint, wait time.Duration) {
	if from.Transport != TransportUDP {
		return
	}
	l := c.line
	c.retrans = l.agent.clock.AfterFunc(wait, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if c.state == CallAnswering {
			c.reply(c.answer)
			c.scheduleAnswer(from, min(2*wait, time.Duration(l.cfg.T2)))
		}
	})
}

func (c *Call) stopAnswer() {
	for _, t := range []Timer{c.retrans, c.giveUp} {
		if t != nil {
			t.Stop()
		}
	}
}

// inDialogRequest handles a request of the call's dialog from a server.
func (c *Call) inDialogRequest(from Endpoint, req *sip.Request, reply func([]byte)) {
	l := c.line
	l.mu.Lock()
	defer l.mu.Unlock()
	respond := func(code int, reason string) {
		res := sip.NewResponseFromRequest(req, code, reason, nil)
		if to := res.To(); to != nil {
			if _, ok := to.Params.Get("tag"); !ok {
				to.Params.Add("tag", c.dlg.tag)
			}
		}
		reply([]byte(res.String()))
	}
	if c.state == CallEnded {
		if req.Method != sip.ACK {
			respond(481, "Call/Transaction Does Not Exist")
		}
		return
	}
	switch req.Method {
	case sip.ACK:
		if c.state == CallAnswering {
			c.stopAnswer()
			c.setState(CallConfirmed)
			if c.hangupOnAck {
				c.sendBye()
				l.drain()
			}
		}
	case sip.INVITE:
		if c.answer != nil && req.CSeq().SeqNo == c.inviteCSeq {
			reply(c.answer) // a retransmission
			return
		}
		respond(501, "Not Implemented") // no media to renegotiate
	case sip.BYE:
		respond(200, "OK")
		c.end(0, "the far end hung up (BYE through "+from.String()+")")
	case sip.CANCEL:
		respond(200, "OK") // answered already: the CANCEL has no effect (9.2)
	case sip.OPTIONS:
		respond(200, "OK")
	default:
		respond(501, "Not Implemented")
	}
}

// serverAt returns the index of the line's server at e (host, port and
// transport), or -1.
func (l *Line) serverAt(e Endpoint) int {
	return slices.IndexFunc(l.servers, func(s Endpoint) bool {
		return s.Host == e.Host && s.Port == e.Port && s.Transport == e.Transport
	})
}
