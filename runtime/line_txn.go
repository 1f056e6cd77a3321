package runtime

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipfailover/sipfailover/fsm"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
	"github.com/sipfailover/sipfailover/runtime/wire"
)

// Transactions of a line: each request it sends, its retransmissions and
// deadline, and the answers and transport failures that end it, handed to
// the machine they belong to.

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
	dst        transport.Endpoint
	server     int
	branch     string
	id         wire.Sent // what its answers repeat
	contact    sip.Uri   // the Contact the request carried
	contactURI string    // the same, as written
	expires    int       // a REGISTER's Expires, -1 for none
	registrar  int       // behind outbound proxies, the registrar a line's REGISTER names (R22)
	authorized bool      // it carried digest credentials
	msg        []byte
	rt         wire.Retransmission
	retrans    Timer
	deadline   Timer // keep-alive and de-register only: their own budget
	slot       **txn // where the owner keeps it; emptied when it finishes
	live       bool
	refused    func(reason string)
	owner      *Request  // nil for the line's own requests
	binding    *binding  // the binding a REGISTER or keep-alive is for, in concurrent mode (R17)
	firstAt    time.Time // when pacing lets it go first (R21); zero: sent at once
	began      time.Time // its first transmission
}

// answers says whether res, from the server at from, answers t: the same
// Call-ID, From tag, CSeq number and method as the request, from the
// server the request went to. Anything else is someone else's answer, or a
// forgery.
func (t *txn) answers(from transport.Endpoint, res *wire.Answer) bool {
	return t.id.Answers(res) && from.Host == t.dst.Host && from.Port == t.dst.Port && from.Transport == t.dst.Transport
}

// spec is a request of method from the line to dst, from the local address
// the network sends from, in the line's domain (or the server's when it has
// none); expires -1 for no Expires. Behind outbound proxies (R22) dst is
// a proxy: the request names the registrar and carries the proxy as a
// pre-loaded Route (RFC 3261 8.1.2), and a REGISTER asks for Path (RFC
// 3327) so that calls to the line come back through the proxy it
// registered through. An OPTIONS keep-alive is the proxy's own.
func (l *Line) spec(method sip.RequestMethod, dst transport.Endpoint, expires int) requestSpec {
	host, port := l.agent.net.Local(dst)
	domain := l.cfg.Domain
	if domain == "" {
		domain = l.domainOf(dst)
	}
	s := requestSpec{method: method, dst: dst, local: [2]string{uriHost(host), strconv.Itoa(port)},
		user: l.cfg.User, domain: domain, display: l.cfg.DisplayName, expires: expires}
	if l.cfg.Proxied() && method != sip.OPTIONS {
		s.registrar = registrarURI(l.cfg.Servers[0]) // a REGISTER of the line names its registrar: sendRegister
		s.routes = []string{routeTo(dst)}
		if method == sip.REGISTER {
			s.supported = "path"
		}
		s.ob = l.cfg.Outbound && method == sip.INVITE
	}
	return s
}

// registrarURI is the Request-URI that names the registrar behind the
// proxies: its address, its port unless DNS SRV finds it, and its
// transport unless UDP.
func registrarURI(r settings.ServerConfig) sip.Uri {
	u := sip.Uri{Scheme: "sip", Host: uriHost(r.Addr), Port: *r.Port}
	if tr := *r.Transport; tr == settings.TransportTCP || tr == settings.TransportTLS {
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", map[int]string{settings.TransportTCP: "tcp", settings.TransportTLS: "tls"}[tr])
	}
	return u
}

// start replaces the transaction in slot with a new one and sends it; a
// send refused at once ends it and calls refused (nil: nothing).
func (l *Line) start(slot **txn, kind txnKind, d *dialog, s requestSpec, server, maxTx int, refused func(string)) *txn {
	l.finish(*slot)
	msg, branch := s.build(d)
	t := &txn{kind: kind, dst: s.dst, server: server, branch: branch, msg: msg,
		id:      wire.Sent{CallID: d.callID, FromTag: d.tag, CSeq: d.cseq, Method: s.method},
		rt:      wire.NewRetransmission(time.Duration(l.cfg.T1), time.Duration(l.cfg.T2), s.method == sip.INVITE, maxTx),
		contact: s.contact(), contactURI: s.contactURI(), expires: s.expires, authorized: s.auth != "",
		slot: slot, live: true, refused: refused}
	*slot = t
	l.agent.bind(branch, l)
	if wait := l.agent.pace.Load().Reserve(addrOf(s.dst), l.agent.clock.Now()); wait > 0 {
		t.firstAt = l.agent.clock.Now().Add(wait)
		l.transmitAfter(t, wait)
		return t
	}
	l.transmit(t)
	return t
}

// refuse tells t's owner that t failed: what the line posts of it carries
// when t was first sent, the start of the fault it saw (Transition.FaultAt).
func (l *Line) refuse(t *txn, reason string) {
	if t.refused == nil {
		return
	}
	l.since = t.began
	t.refused(reason)
	l.since = time.Time{}
}

// pending is how long t still waits for its first transmission, put off by
// the agent's pacing (R21); 0 for nil or a request already sent. A budget
// armed with the request adds it: the server's silence counts from the
// moment the server could hear.
func (t *txn) pending(now time.Time) time.Duration {
	if t == nil || t.rt.Sent() > 0 || t.firstAt.IsZero() {
		return 0
	}
	return max(0, t.firstAt.Sub(now))
}

// postLine returns a refused callback that posts ev to the line.
func (l *Line) postLine(ev fsm.LineEvent) func(string) {
	return func(reason string) { l.post(ev, reason) }
}

// transmit sends t once more and, over UDP, schedules the next
// retransmission (wire.Retransmission: RFC 3261 Timer E or Timer A) unless
// the cap of transmissions is reached (I4).
func (l *Line) transmit(t *txn) {
	if t.rt.Sent() == 0 {
		t.began = l.agent.clock.Now()
	}
	wait, again := t.rt.Transmitted()
	if err := l.agent.net.Send(t.dst, t.msg); err != nil {
		l.finish(t)
		l.refuse(t, err.Error())
		return
	}
	if again && t.dst.Transport == settings.TransportUDP {
		l.transmitAfter(t, wait)
	}
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

// response handles an answer from the server at from, routed here by its
// branch.
func (l *Line) response(from transport.Endpoint, res *wire.Answer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var t *txn
	for _, c := range l.transactions() {
		if c.branch == res.Branch {
			t = c
		}
	}
	if t == nil {
		return // late
	}
	if !t.answers(from, res) {
		l.agent.counters.unmatched.Add(1)
		l.agent.log.Debug("response matches no transaction; dropped", "line", l.cfg.Name, "from", from.String(),
			"status", res.StatusCode, "call_id", res.CallID, "cseq", res.CSeq, "method", res.Method)
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
		delete(l.retryUntil, addrOf(t.dst)) // the server is back: its Retry-After is over
	}
	if t.owner != nil {
		t.owner.answer(t, res)
		l.drain()
		return
	}
	code := res.StatusCode
	reason := fmt.Sprintf("%d %s from %s", code, res.Reason, t.dst)
	// A proxy's answer for the registrar behind it says nothing of the
	// proxy: its Retry-After is not the proxy's (R22).
	unavailable := slices.Contains(l.cfg.UnavailableCodes, code) && !(t.kind != txnKeepalive && l.forRegistrar(code))
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
			l.regServer, l.regRegistrar = t.dst, t.registrar
			l.setRefresh(refresh)
		case outAgain, outChallenged:
			if challenged { // not a 423
				l.mainChallenge = res
			}
		}
		l.postSince([...]fsm.LineEvent{outGranted: fsm.LineEventResp2xx, outRejected: fsm.LineEventRespRejected, outAgain: fsm.LineEventRespRetry,
			outChallenged: fsm.LineEventRespChallenge, outUnavailable: fsm.LineEventRespUnavailable,
			outRegistrarUnavailable: fsm.LineEventRespRegistrarDown}[out], why, t.began)
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
			outChallenged: fsm.LineEventProbeChallenge, outUnavailable: fsm.LineEventProbeFailed, outRegistrarUnavailable: fsm.LineEventProbeFailed}[out], why)
	case txnKeepalive:
		if unavailable {
			l.refuse(t, reason)
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

// unreachable handles ICMP unreachable or a failed connection to dst.
func (l *Line) unreachable(dst transport.Endpoint, err *transport.Error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ev := fsm.LineEventTransportTcp
	if dst.Transport == settings.TransportUDP {
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
				ev = map[bool]fsm.BindingEvent{true: fsm.BindingEventTransportIcmp, false: fsm.BindingEventTransportTcp}[dst.Transport == settings.TransportUDP]
			}
			l.postBinding(b, ev, err.Error())
			continue
		}
		switch t.kind {
		case txnRequest:
			rev := fsm.RequestEventTransportTcp
			if dst.Transport == settings.TransportUDP {
				rev = fsm.RequestEventTransportIcmp
			}
			l.postReq(t.owner, rev, err.Error())
		case txnRegister:
			l.postSince(ev, err.Error(), t.began)
		case txnProbe:
			l.post(fsm.LineEventProbeFailed, err.Error())
		case txnKeepalive:
			l.refuse(t, err.Error())
		}
	}
	if l.flowUnreachable(dst, err, !hit) {
		hit = true
	}
	if !hit && dst.Transport != settings.TransportUDP && l.cc != nil {
		// Nothing in flight, but a binding's connection is gone.
		for _, b := range l.cc.bindings {
			if b.m.State() == fsm.BindingStateRegistered && b.ep == dst {
				l.postBinding(b, fsm.BindingEventTransportClosed, err.Error())
				hit = true
			}
		}
	}
	if !hit && dst.Transport != settings.TransportUDP && l.cc == nil && l.m.State().HasTag(fsm.LineTagRegistered) && l.server(l.m.Vars().Server) == dst {
		// Nothing in flight, but the registration's connection is gone.
		l.post(fsm.LineEventTransportClosed, err.Error())
		hit = true
	}
	if hit {
		l.drain()
	}
}
