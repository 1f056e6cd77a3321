package runtime

import (
	"fmt"
	"slices"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipfailover/sipfailover/fsm"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
	"github.com/sipfailover/sipfailover/runtime/wire"
)

// The line's REGISTER exchange: the model's register and keep-alive
// actions, what a final answer to a REGISTER means (R1), the expiry
// granted and the Retry-After and Min-Expires a server asks for.

// lateRetryAfter takes the Retry-After of a late answer from the server at
// from to a request of this line (its From names the line's user), when its
// code makes that server unavailable for this line.
func (l *Line) lateRetryAfter(from transport.Endpoint, res *wire.Answer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if res.FromUser != l.cfg.User {
		return
	}
	if l.serverAt(from) >= 0 && slices.Contains(l.cfg.UnavailableCodes, res.StatusCode) && !(res.Method == sip.REGISTER && l.forRegistrar(res.StatusCode)) {
		var reason string
		l.noteRetryAfter(res, from, &reason)
	}
}

// noteRetryAfter holds server off for a 503's Retry-After (R1, I3).
func (l *Line) noteRetryAfter(res *wire.Answer, server transport.Endpoint, reason *string) {
	if ra := res.RetryAfter; ra > 0 {
		if until := l.agent.clock.Now().Add(ra); until.After(l.retryUntil[addrOf(server)]) {
			l.retryUntil[addrOf(server)] = until // a shorter one does not cut a longer one short
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
	// Behind outbound proxies, the proxy's answer for the registrar it
	// leads to: the registrar is unavailable, the proxy is up (R22).
	outRegistrarUnavailable
)

// registrarCodes are a proxy's answers for the registrar behind it (R22):
// 408, the registrar did not answer the proxy; 500, which a proxy answers
// for a 503 from downstream (RFC 3261 16.7), as Kamailio does by default;
// 502 and 504, a bad or silent next hop.
var registrarCodes = []int{sip.StatusRequestTimeout, sip.StatusInternalServerError, sip.StatusBadGateway, sip.StatusGatewayTimeout}

// forRegistrar says whether a proxy of the line answered code to a
// REGISTER for the registrar behind it (R22).
func (l *Line) forRegistrar(code int) bool {
	return l.cfg.Proxied() && slices.Contains(registrarCodes, code)
}

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
	case l.forRegistrar(code):
		return outRegistrarUnavailable, 0, reason + " for the registrar " + keyOf(l.cfg.Servers[t.registrar]).String()
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
		delete(l.bound, addrOf(t.dst)) // a de-registration: 0 is what it asked
		return 0, true
	}
	d, zero := grantedExpiry(res, t.expires, t.contact)
	if zero {
		return 0, false
	}
	l.bound[addrOf(t.dst)] = t.contactURI
	return settings.RefreshAfter(d), true
}

// setRefresh times the line's next refresh; 0 leaves it as it is.
func (l *Line) setRefresh(d time.Duration) {
	if d > 0 {
		p := l.m.Params()
		p.RefreshInterval = fsm.Duration(d)
		l.m.SetParams(p)
	}
}

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
func (l *Line) heldOff(server transport.Endpoint) string {
	until, ok := l.retryUntil[addrOf(server)]
	if !ok {
		return ""
	}
	if !l.agent.clock.Now().Before(until) {
		delete(l.retryUntil, addrOf(server))
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
	registrar := l.m.Vars().Registrar
	if l.cfg.Proxied() {
		s.registrar = registrarURI(l.cfg.Servers[registrar])
	}
	s.stale = l.bound[addrOf(dst)]
	l.mainChallenge = nil
	if err := l.authorize(&s, challenge); err != nil {
		l.finish(l.main)
		l.post(fsm.LineEventRespRejected, err.Error())
		return
	}
	l.start(&l.main, txnRegister, &l.reg, s, server, l.m.MaxTransmissions(), l.postLine(refusedEvent(dst))).registrar = registrar
}

// ttl is the expiry the line asks of server i: its TTL, or the Min-Expires
// of its 423 when that is longer; behind outbound proxies, the TTL of the
// registrar the line is on (R22).
func (l *Line) ttl(i int) int {
	if l.cfg.Proxied() {
		return max(*l.cfg.Servers[l.m.Vars().Registrar].TTL, l.minExpires[addrOf(l.targets[i].ep)])
	}
	return l.ttlOf(l.targets[i])
}

func (l *Line) ttlOf(s slot) int { return max(*l.hops[s.cfg].TTL, l.minExpires[addrOf(s.ep)]) }

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
	l.minExpires[addrOf(t.dst)] = v
	return ""
}

func refusedEvent(dst transport.Endpoint) fsm.LineEvent {
	if dst.Transport == settings.TransportUDP {
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
			l.since = t.began
			failed(fmt.Sprintf("no answer to OPTIONS from %s within %v", t.dst, budget))
			l.since = time.Time{}
			l.drain()
		}
	})
	return t
}
