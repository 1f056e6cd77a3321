package runtime

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipfailover/sipfailover/fsm"
	"github.com/sipfailover/sipfailover/runtime/pace"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
	"github.com/sipfailover/sipfailover/runtime/wire"
)

// Agent runs lines over one Network: many lines share its sockets, and
// responses reach their line through the Via branch.
type Agent struct {
	net   transport.Network
	clock Clock
	log   *slog.Logger
	watch func(Transition)

	callWatch    func(CallInfo)
	answerPolicy func(line, caller string) int

	randMu sync.Mutex
	rand   *rand.Rand

	counters counters
	logLimit *logLimit

	maxCalls int // calls of all lines at once; more incoming ones get 486

	loc  locator                                // where the lines' servers are (R20)
	pace atomic.Pointer[pace.Pacer[serverAddr]] // new requests a second to one server (R21); nil: unbounded

	mu       sync.Mutex
	lines    []*Line
	branches map[string]*Line
	calls    map[string][]*Call // by Call-ID: both ends of a call may be lines here
	nCalls   int                // the calls in calls
}

// DefaultMaxCalls is how many calls an agent holds at once unless
// WithMaxCalls says otherwise.
const DefaultMaxCalls = 1000

// WithMaxCalls bounds the calls of all lines at once (I11): an incoming
// call past it is answered 486 Busy Here.
func WithMaxCalls(n int) Option { return func(a *Agent) { a.maxCalls = n } }

// roomForCall says whether one more call fits under the agent's bound.
func (a *Agent) roomForCall() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.nCalls < a.maxCalls
}

// Option configures an Agent.
type Option func(*Agent)

// WithClock sets the clock (default the wall clock).
func WithClock(c Clock) Option { return func(a *Agent) { a.clock = c } }

// WithLogger sets the logger; every transition is one log line (R14).
func WithLogger(l *slog.Logger) Option { return func(a *Agent) { a.log = l } }

// WithSeed seeds the random source of the back-off jitter (R9), so that a
// run can be replayed.
func WithSeed(seed uint64) Option {
	return func(a *Agent) { a.rand = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
}

// WithWatcher calls f after every transition of every line, those that stay
// in their state included (From == To), on the line's goroutine; f must not
// call back into the line.
func WithWatcher(f func(Transition)) Option { return func(a *Agent) { a.watch = f } }

// WithCallWatcher calls f after every state change of every call, on the
// line's goroutine; f must not call back into the line or the call.
func WithCallWatcher(f func(CallInfo)) Option { return func(a *Agent) { a.callWatch = f } }

// WithAnswer sets how incoming calls are answered: f gets the line's name
// and the caller's URI and returns 200 to answer, or a final failure code
// (486, 603 ...) to reject. Without it every call is answered.
func WithAnswer(f func(line, caller string) int) Option { return func(a *Agent) { a.answerPolicy = f } }

// NewAgent returns an agent that sends over n.
func NewAgent(n transport.Network, opts ...Option) *Agent {
	a := &Agent{
		net:      n,
		clock:    RealClock{},
		log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		rand:     rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		branches: map[string]*Line{},
		calls:    map[string][]*Call{},
		maxCalls: DefaultMaxCalls,
	}
	a.pace.Store(newPacer(settings.DefaultPacing))
	a.loc = locator{agent: a, names: map[serverKey]*located{}}
	for _, o := range opts {
		o(a)
	}
	if a.loc.res == nil {
		a.loc.res = NewDNSResolver(nil)
	}
	a.logLimit = newLogLimit(a.clock)
	n.SetHandler(a)
	return a
}

// AddLine validates cfg and adds a line, not yet registered: call Register.
func (a *Agent) AddLine(cfg settings.LineConfig) (*Line, error) {
	if err := (settings.Config{Lines: []settings.LineConfig{cfg}}).Validate(); err != nil {
		return nil, err
	}
	l, err := newLine(a, cfg.Defaults())
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.lines = append(a.lines, l)
	a.mu.Unlock()
	return l, nil
}

// RemoveLine drops l from the agent; unregister it first.
func (a *Agent) RemoveLine(l *Line) {
	l.mu.Lock()
	l.timers.StopAll()
	l.stopFlows()
	for _, t := range []*txn{l.main, l.probe, l.ka, l.dereg} {
		l.finish(t)
	}
	for _, r := range slices.Clone(l.requests) { // end removes r from l.requests
		r.end()
	}
	for _, c := range slices.Clone(l.calls) {
		c.post(fsm.CallEventLineGone, "the line was removed")
	}
	if l.cc != nil {
		l.cc.stop()
	}
	l.drain()
	l.mu.Unlock()
	for _, k := range l.keys {
		a.loc.release(k, l)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lines = slices.DeleteFunc(a.lines, func(x *Line) bool { return x == l })
}

// Lines returns the agent's lines.
func (a *Agent) Lines() []*Line {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*Line(nil), a.lines...)
}

// jitter returns a random whole number in [0, n].
func (a *Agent) jitter(n int64) int64 {
	if n <= 0 {
		return 0
	}
	a.randMu.Lock()
	defer a.randMu.Unlock()
	return a.rand.Int64N(n + 1)
}

func (a *Agent) bind(branch string, l *Line) {
	a.mu.Lock()
	a.branches[branch] = l
	a.mu.Unlock()
}

func (a *Agent) unbind(branch string) {
	a.mu.Lock()
	delete(a.branches, branch)
	a.mu.Unlock()
}

// Counters returns what the agent dropped or refused at the edge so far.
func (a *Agent) Counters() Counters { return a.counters.snapshot() }

// warn logs bad input from a source, a few lines a minute at most per
// source; the counters count it all.
func (a *Agent) warn(from transport.Endpoint, msg string, args ...any) {
	if a.logLimit.allow(from.Host) {
		a.log.Warn(msg, append([]any{"from", from.String()}, args...)...)
	}
}

// contain stops a panic in the handling of one message from taking the
// process, and every other line, with it (I11). It is a safety net: the
// edge checks are the fix, and each panic counted here is a bug.
func (a *Agent) contain(from transport.Endpoint, what string) {
	if r := recover(); r != nil {
		a.counters.panics.Add(1)
		a.log.Error("panic while handling a message; message dropped", "from", from.String(), "message", what, "panic", fmt.Sprint(r),
			"stack", string(debug.Stack()))
	}
}

// Receive takes one message as it came from the server at from: it is
// parsed, checked and handed on as a Network would (reply answers a
// request the way it came). A Network of an embedder's own can call it.
func (a *Agent) Receive(from transport.Endpoint, data []byte, reply func([]byte)) {
	transport.Receive(a, from, data, reply)
}

// HandleUnparsable counts bytes that are no SIP message.
func (a *Agent) HandleUnparsable(from transport.Endpoint, err error) {
	a.counters.unparsable.Add(1)
	a.warn(from, "unparsable message dropped", "err", err)
}

// HandleResponse routes a response to the line whose request it answers.
// A response without the mandatory headers is dropped here (RFC 3261 8.1.3).
func (a *Agent) HandleResponse(from transport.Endpoint, res *sip.Response) {
	defer a.contain(from, res.StartLine())
	if err := wire.CheckResponse(res); err != nil {
		a.counters.badResponses.Add(1)
		a.warn(from, "bad response dropped", "status", res.StatusCode, "err", err)
		return
	}
	ans := wire.ParseAnswer(res)
	a.mu.Lock()
	l := a.branches[ans.Branch]
	a.mu.Unlock()
	var c *Call
	if l == nil {
		c = a.findCall(ans.CallID, ans.FromTag, "")
	}
	switch {
	case l != nil:
		l.response(from, ans)
	case c != nil && res.StatusCode >= 200 && ans.Method == sip.INVITE:
		c.line.mu.Lock()
		c.lateFinal(ans)
		c.line.drain()
		c.line.mu.Unlock()
	}
	if l == nil && ans.RetryAfter > 0 {
		// A late answer to a request a line has abandoned: a Retry-After in
		// it still holds its server off (R1), the server asked to be left
		// alone.
		for _, l := range a.Lines() {
			l.lateRetryAfter(from, ans)
		}
	}
}

// HandleRequest answers a request from a server: an OPTIONS ping, a new
// call for one of the lines, or a request of a call's dialog.
// A request without the mandatory headers, or of another SIP version, is
// answered 400 or 505 here and reaches no line (RFC 3261 8.2); an ACK,
// which has no answer, is dropped.
func (a *Agent) HandleRequest(from transport.Endpoint, req *sip.Request, reply func([]byte)) {
	defer a.contain(from, req.StartLine())
	respond := func(code int, reason string) {
		reply([]byte(wire.Reply(req, code, reason, "", nil).String()))
	}
	if bad := wire.CheckRequest(req); bad != nil {
		a.counters.badRequests.Add(1)
		a.warn(from, "bad request refused", "method", string(req.Method), "answer", bad.Error())
		if req.Method != sip.ACK && req.Via() != nil {
			respond(bad.Code, bad.Reason)
		}
		return
	}
	callID, fromTag, toTag := wire.DialogOf(req)
	c := a.findCall(callID, toTag, fromTag)
	switch {
	case c != nil:
		c.inDialogRequest(from, req, reply)
	case req.Method == sip.ACK: // of a call that ended, or of a rejection
	case req.Method == sip.OPTIONS:
		respond(200, "OK")
	case req.Method == sip.INVITE:
		if l := a.lineFor(from, req); l != nil {
			l.incoming(from, req, reply)
		} else {
			respond(404, "Not Found")
		}
	case req.Method == sip.BYE || req.Method == sip.CANCEL:
		respond(481, "Call/Transaction Does Not Exist")
	default:
		respond(501, "Not Implemented")
	}
}

// lineFor picks the line an incoming INVITE is for: one that has from among
// its servers and whose user the Request-URI (else the To) names.
func (a *Agent) lineFor(from transport.Endpoint, req *sip.Request) *Line {
	var users []string
	users = append(users, req.Recipient.User)
	if to := req.To(); to != nil {
		users = append(users, to.Address.User)
	}
	lines := a.Lines()
	for _, user := range users {
		for _, l := range lines {
			if l.cfg.User == user && l.serverAt(from) >= 0 {
				return l
			}
		}
	}
	return nil
}

// findCall finds the call a message belongs to: by its Call-ID and our
// tag (in local), or, for a call whose answer has not reached the far end
// (a retransmitted INVITE carries no To tag), by the far end's tag.
func (a *Agent) findCall(callID, localTag, remoteTag string) *Call {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.calls[callID] {
		if (localTag != "" && c.dlg.tag == localTag) || (localTag == "" && remoteTag != "" && !c.info.Outgoing && c.remoteTag == remoteTag) {
			return c
		}
	}
	return nil
}

func (a *Agent) fileCall(c *Call) {
	a.mu.Lock()
	a.calls[c.dlg.callID] = append(a.calls[c.dlg.callID], c)
	a.nCalls++
	a.mu.Unlock()
}

func (a *Agent) dropCall(c *Call) {
	a.mu.Lock()
	id := c.dlg.callID
	before := len(a.calls[id])
	if a.calls[id] = slices.DeleteFunc(a.calls[id], func(x *Call) bool { return x == c }); len(a.calls[id]) == 0 {
		delete(a.calls, id)
	}
	a.nCalls -= before - len(a.calls[id])
	a.mu.Unlock()
}

// HandleFlow hands an answer to a flow keep-alive to the lines that have
// the server at from; each takes it only for a keep-alive of its own.
func (a *Agent) HandleFlow(from transport.Endpoint, ans transport.FlowAnswer) {
	defer a.contain(from, "flow keep-alive answer")
	for _, l := range a.Lines() {
		l.flowAnswer(from, ans)
	}
}

// HandleUnreachable tells every line with a request or keep-alive in
// flight to dst.
func (a *Agent) HandleUnreachable(dst transport.Endpoint, err *transport.Error) {
	defer a.contain(dst, "unreachable: "+err.Error())
	for _, l := range a.Lines() {
		l.unreachable(dst, err)
	}
}

// Transition is one state change of a line, as watchers and logs see it.
type Transition struct {
	Line       string
	From, To   string
	Event      string
	ID         string // the model transition taken
	Server     int    // the line's server after the transition: its number in the list, from 1
	ServerAddr string
	Registrar  int    // behind outbound proxies, the registrar after the transition, from 1 (R22); 0 without
	Reason     string // why, for failures: "503 Service Unavailable from UDP 127.0.0.1:5070"
	At         time.Time
	// FaultAt is, for a failure, when the fault the line saw began: the
	// first transmission of the request (or keep-alive) that went
	// unanswered or failed; At when that is not known. Zero for a step
	// that is no failure.
	FaultAt time.Time
}

func (t Transition) String() string {
	return fmt.Sprintf("%s: %s -> %s on %s (%s) server %d %s %s", t.Line, t.From, t.To, t.Event, t.ID, t.Server, t.ServerAddr, t.Reason)
}
