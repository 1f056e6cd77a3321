package capture

import (
	"bytes"
	"net/netip"
	"slices"
	"time"

	"github.com/pion/stun/v3"
)

// Flow keep-alives (RFC 5626 4.4) are no SIP: a STUN Binding request or a
// bare CRLF datagram over UDP, a CRLFCRLF between a stream's messages, and
// the STUN answer or CRLF pong that comes back. A phone that leaves a
// server whose keep-alive drew ICMP or a reset, or went unanswered where
// the server answered before, has left it for a reason: its flow is lost.

// flowWait is how long a keep-alive waits for its answer: RFC 5626 4.4.1's
// 10 s for a pong, which also holds a STUN request's retransmissions.
const flowWait = 10 * time.Second

// flowPacket is one keep-alive, or its answer.
type flowPacket struct {
	Frame     int
	At        time.Time
	Src, Dst  netip.AddrPort
	Transport string
	STUN      bool     // a STUN message: ID is its transaction ID
	ID        [12]byte //
}

// flowDatagram reads a UDP datagram that is a flow keep-alive or its
// answer: a STUN Binding request or success response, or nothing but
// CRLFs.
func flowDatagram(p *Packet) (flowPacket, bool) {
	f := flowPacket{Frame: p.Frame, At: p.At, Src: p.Src, Dst: p.Dst, Transport: "udp"}
	if stun.IsMessage(p.Payload) {
		m := &stun.Message{Raw: append([]byte(nil), p.Payload...)}
		if m.Decode() != nil || (m.Type != stun.BindingRequest && m.Type != stun.BindingSuccess) {
			return f, false
		}
		f.STUN, f.ID = true, m.TransactionID
		return f, true
	}
	return f, len(p.Payload) > 0 && len(bytes.Trim(p.Payload, "\r\n")) == 0
}

// flowLosses adds to each server's lost flows the keep-alives the phone
// sent it that drew ICMP or a reset, and those left unanswered for
// flowWait by a server that had answered one of the phone's before. A
// server that answered once stays one that answers: a phone may not have
// judged a keep-alive left unanswered (one sent while it had no server,
// given up when it registered again), and still hold the server to its
// answers when the next one goes unanswered.
func (a *Analysis) flowLosses(flows []flowPacket, packets []Packet) {
	answered := map[int]bool{}
	seen := map[[12]byte]bool{} // STUN requests already taken: their retransmissions
	for i, f := range flows {
		srv := a.server(f.Dst)
		if srv < 0 || (f.STUN && seen[f.ID]) {
			continue
		}
		seen[f.ID] = f.STUN
		a.tcpFlows = a.tcpFlows || f.Transport == "tcp"
		answer := slices.IndexFunc(flows[i+1:], func(g flowPacket) bool {
			return g.Src == f.Dst && g.Dst.Addr() == f.Src.Addr() && g.Transport == f.Transport && g.STUN == f.STUN &&
				(!f.STUN || g.ID == f.ID) && g.At.Sub(f.At) <= flowWait+a.Slack
		})
		from, _ := slices.BinarySearchFunc(packets, f.Frame+1, func(p Packet, frame int) int { return p.Frame - frame })
		fault := -1
		for j := from; j < len(packets) && !packets[j].At.After(f.At.Add(a.Slack)); j++ {
			p := &packets[j]
			if p.Proto == "icmp" && p.OrigSrc == f.Src && p.OrigDst == f.Dst || p.Proto == "tcp" && p.RST && p.Src == f.Dst && p.Dst == f.Src {
				fault = j
				break
			}
		}
		switch {
		case fault >= 0:
			a.lose(srv, packets[fault].At)
		case answer >= 0:
			answered[srv] = true
		case answered[srv] && !f.At.Add(flowWait).After(a.End):
			a.lose(srv, f.At.Add(flowWait))
		}
	}
}

// lose notes that a keep-alive found the phone's flow to server srv lost
// at t: the server is unavailable (R1), as after a reset.
func (a *Analysis) lose(srv int, t time.Time) {
	if a.resets == nil {
		a.resets = map[int][]time.Time{}
	}
	if a.flowLost == nil {
		a.flowLost = map[int][]time.Time{}
	}
	a.resets[srv] = append(a.resets[srv], t)
	slices.SortFunc(a.resets[srv], time.Time.Compare)
	a.flowLost[srv] = append(a.flowLost[srv], t)
}
