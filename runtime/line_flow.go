package runtime

import (
	"errors"
	"fmt"
	"time"

	"github.com/sipfailover/sipfailover/fsm"
	"github.com/sipfailover/sipfailover/runtime/transport"
)

// The flow keep-alive (RFC 5626 4.4; the model's flow timer and its
// send_flow_keepalive and send_flow_probes actions): a packet to a server
// on the flow the line uses to it, no SIP transaction. While registered it
// goes to the current server, and a server that answered one on this flow
// and then leaves one unanswered is unavailable (flow.lost); one that never
// answers is never failed for its silence. While every server failed it
// goes to each, and a sign of life its latest keep-alive there did not find
// (a port open again, an answer again) ends the back-off (flow.alive). In
// concurrent mode (model/binding.yaml) each binding does the same with its
// own server: registered, it watches the flow; waiting, it looks for a sign
// of life.

// flowWait is how long a keep-alive waits for its answer: RFC 5626
// 4.4.1's wait for a pong, within which a STUN request is sent again as
// RFC 5389 7.2.1 says (RTO 500 ms, doubling): at 0, 0.5, 1.5, 3.5 and 7.5 s.
const flowWait = 10 * time.Second

// stunResends are when a STUN keep-alive goes again, counted from its first
// transmission, while no answer came.
var stunResends = []time.Duration{500 * time.Millisecond, 1500 * time.Millisecond, 3500 * time.Millisecond, 7500 * time.Millisecond}

// flowPing is one keep-alive waiting for its answer.
type flowPing struct {
	dst      transport.Endpoint
	stun     bool     // a STUN Binding request, answered with id
	id       [12]byte // its transaction ID
	answer   bool     // an answer is expected: not so for a bare CRLF datagram
	probe    bool     // sent while every server failed (send_flow_probes)
	sent     time.Time
	deadline Timer // flowWait after it went
	resend   Timer // a STUN request's next retransmission
}

// What a server's latest keep-alive found.
const (
	flowAnswered = "answered" // a STUN answer or a pong
	flowOpen     = "open"     // a connection accepted, no answer yet
	flowClosed   = "closed"   // ICMP, or the connection refused or reset
	flowSilent   = "silent"   // no answer within flowWait, and no ICMP
)

// flows is the line's flow keep-alive state, under l.mu.
type flows struct {
	pings    map[serverAddr]*flowPing
	answered map[serverAddr]bool   // answered a keep-alive on its current flow
	last     map[serverAddr]string // what its latest keep-alive found

	sent, lost   uint64
	lastAnswered time.Time
	rtt          time.Duration
}

// SendFlowKeepalive sends a flow keep-alive to the current server.
func (a *lineActions) SendFlowKeepalive() {
	l := (*Line)(a)
	if dst := l.server(l.m.Vars().Server); dst != (transport.Endpoint{}) {
		l.flowPing(dst, false)
	}
}

// SendFlowProbes sends a flow keep-alive to every located server of the
// list, in priority order.
func (a *lineActions) SendFlowProbes() {
	l := (*Line)(a)
	for i := range l.targets {
		if dst := l.server(i); dst != (transport.Endpoint{}) {
			l.flowPing(dst, true)
		}
	}
}

// flowPing sends dst a keep-alive, unless one to it still waits.
func (l *Line) flowPing(dst transport.Endpoint, probe bool) {
	at := addrOf(dst)
	if p := l.flows.pings[at]; p != nil {
		p.probe = p.probe || probe
		return
	}
	p := &flowPing{dst: dst, answer: true, probe: probe, sent: l.agent.clock.Now()}
	var msg []byte
	switch {
	case dst.Transport != transport.UDP:
		msg = transport.Ping
	case l.cfg.NATKeepaliveMode == "crlf":
		msg, p.answer = transport.CRLF, false
	default:
		msg, p.id = transport.STUNRequest()
		p.stun = true
		l.stunResend(p, msg, 0)
	}
	if l.flows.pings == nil { // made at the first keep-alive: a line without one costs nothing
		l.flows.pings, l.flows.answered, l.flows.last = map[serverAddr]*flowPing{}, map[serverAddr]bool{}, map[serverAddr]string{}
	}
	l.flows.pings[at] = p
	l.flows.sent++
	p.deadline = l.agent.clock.AfterFunc(flowWait, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.flows.pings[at] == p {
			l.flowUnanswered(p)
			l.drain()
		}
	})
	if err := l.agent.net.Send(dst, msg); err != nil {
		var te *transport.Error
		if !errors.As(err, &te) {
			te = &transport.Error{Dst: dst, Err: err}
		}
		l.flowUnreachable(dst, te, true)
	}
}

// stunResend sends p's STUN request again at the k-th of stunResends,
// while it waits: one timer at a time.
func (l *Line) stunResend(p *flowPing, msg []byte, k int) {
	if k >= len(stunResends) {
		return
	}
	wait := stunResends[k]
	if k > 0 {
		wait -= stunResends[k-1]
	}
	p.resend = l.agent.clock.AfterFunc(wait, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.flows.pings[addrOf(p.dst)] == p {
			l.agent.net.Send(p.dst, msg)
			l.stunResend(p, msg, k+1)
		}
	})
}

// endPing forgets p and stops its timers.
func (l *Line) endPing(p *flowPing) {
	for _, t := range []Timer{p.deadline, p.resend} {
		if t != nil {
			t.Stop()
		}
	}
	delete(l.flows.pings, addrOf(p.dst))
}

// flowAnswer takes what the server at from sent back to a keep-alive: a
// STUN answer counts only with the transaction ID of the request waiting
// (anything else is late, or forged), a pong only while a ping waits.
func (l *Line) flowAnswer(from transport.Endpoint, a transport.FlowAnswer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at := addrOf(from)
	p := l.flows.pings[at]
	switch {
	case p == nil:
		return
	case a.Kind == transport.Accepted:
		// A connection accepted: the port is open, whatever the pongs.
		l.flowFound(p, flowOpen, fmt.Sprintf("%s accepted a connection", from))
		l.drain()
		return
	case a.Kind == transport.STUNSuccess && (!p.stun || a.TxID != p.id),
		a.Kind == transport.Pong && p.stun:
		l.agent.log.Debug("flow keep-alive answer matches none sent; dropped", "line", l.cfg.Name, "from", from.String(), "kind", a.Kind.String())
		return
	}
	l.endPing(p)
	now := l.agent.clock.Now()
	l.flows.answered[at] = true
	l.flows.lastAnswered, l.flows.rtt = now, now.Sub(p.sent)
	l.flowFound(p, flowAnswered, fmt.Sprintf("%s answered a keep-alive (%s)", from, a.Kind))
	l.drain()
}

// flowFound records what p found of its server. While every server
// failed, a sign of life the server's latest keep-alive did not find ends
// the back-off (flow.alive): a port that was closed and is open again (a
// connection accepted, an answer, or no ICMP), or an answer from a server
// that had fallen silent. A server that answered all along (one that
// answers STUN and 503s every REGISTER) does not, nor one that accepts
// connections and never answers (a frozen one).
func (l *Line) flowFound(p *flowPing, found, why string) {
	at := addrOf(p.dst)
	before := l.flows.last[at]
	l.flows.last[at] = found
	back := before == flowClosed && found != flowClosed || before == flowSilent && found == flowAnswered
	switch {
	case !p.probe || !back:
	case l.cc != nil:
		if b := l.cc.to(p.dst); b != nil && b.m.State() == fsm.BindingStateWaiting {
			l.postBinding(b, fsm.BindingEventFlowAlive, why)
		}
	case l.m.State() == fsm.LineStateAllFailed:
		l.post(fsm.LineEventFlowAlive, why)
	}
}

// flowUnanswered judges p, which got no answer within flowWait.
func (l *Line) flowUnanswered(p *flowPing) {
	l.endPing(p)
	at := addrOf(p.dst)
	// After a keep-alive that drew ICMP, one that draws none finds the
	// port open again.
	l.flowFound(p, flowSilent, fmt.Sprintf("%s no longer draws ICMP port unreachable", p.dst))
	if !p.answer || !l.flows.answered[at] {
		return // a server that never answered is not failed for its silence
	}
	delete(l.flows.answered, at)
	l.flows.lost++
	l.agent.net.Forget(p.dst)
	why := fmt.Sprintf("no answer to the flow keep-alive from %s within %v; it answered before", p.dst, flowWait)
	switch {
	case l.cc != nil:
		if b := l.cc.to(p.dst); b != nil && !p.probe && b.m.State() == fsm.BindingStateRegistered {
			l.postBinding(b, fsm.BindingEventFlowLost, why)
		}
	case l.m.State().HasTag(fsm.LineTagRegistered) && l.server(l.m.Vars().Server) == p.dst:
		l.postSince(fsm.LineEventFlowLost, why, p.sent)
	}
}

// flowUnreachable takes ICMP or a refused or reset connection for a
// keep-alive waiting to dst, and says whether it raised an event: over
// UDP, the current server's port is closed. report false raises none: a
// transaction of the line hit by the same error has raised one already.
func (l *Line) flowUnreachable(dst transport.Endpoint, err *transport.Error, report bool) bool {
	at := addrOf(dst)
	p := l.flows.pings[at]
	delete(l.flows.answered, at)
	if p == nil {
		return false
	}
	l.endPing(p)
	l.flowFound(p, flowClosed, "")
	if p.probe {
		return false
	}
	if !report || dst.Transport != transport.UDP {
		return false // a stream's loss is transport.closed (unreachable)
	}
	if l.cc != nil {
		if b := l.cc.to(dst); b != nil && b.m.State() == fsm.BindingStateRegistered {
			l.postBinding(b, fsm.BindingEventTransportIcmp, err.Error())
			return true
		}
		return false
	}
	if l.m.State().HasTag(fsm.LineTagRegistered) && l.server(l.m.Vars().Server) == dst {
		l.postSince(fsm.LineEventTransportIcmp, err.Error(), p.sent)
		return true
	}
	return false
}

// flowStep gives up the keep-alives sent while every server failed when
// the line leaves all_failed: what they find is for the back-off only.
func (l *Line) flowStep(from, to fsm.LineState) {
	if from == fsm.LineStateAllFailed && to != from {
		for _, p := range l.flows.pings {
			if p.probe {
				l.endPing(p)
			}
		}
	}
}

// stopFlows gives up every keep-alive; the line is going.
func (l *Line) stopFlows() {
	for _, p := range l.flows.pings {
		l.endPing(p)
	}
}
