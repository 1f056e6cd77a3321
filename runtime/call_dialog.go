package runtime

import (
	"fmt"
	"slices"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/sipfailover/sipfailover/runtime/locate"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
	"github.com/sipfailover/sipfailover/runtime/wire"
)

// The messages of a call's dialog, apart from the INVITE and BYE that the
// request machine sends: ACKs, the route set, the SDP.

// ackFailure acknowledges a final failure to the INVITE sent in t (RFC
// 3261 17.1.1.3).
func (c *Call) ackFailure(t *txn, res *wire.Answer) {
	msg, err := wire.Parse(t.msg)
	req, ok := msg.(*sip.Request)
	if err != nil || !ok {
		return
	}
	c.line.agent.net.Send(t.dst, []byte(wire.AckOfFailure(req, res.To()).String()))
}

// buildAck writes the ACK of a 2xx: a new branch, the INVITE's CSeq
// number, through the route set.
func (c *Call) buildAck(s requestSpec, seq uint32) []byte {
	d := c.dlg
	d.cseq = seq - 1 // build adds one
	msg, _ := s.build(&d)
	return msg
}

// inDialog fills s, a request of the dialog sent through server, with the
// remote target, the remote tag and the route set less the entries of
// servers in dead, which were found unavailable (R7). When server is then
// not the route set's first hop (the dialog failed over to it, or its
// server does not record-route), it goes first as a pre-loaded route (RFC
// 3261 8.1.2, 16.12, as an outbound proxy does): a server that takes
// in-dialog requests only through loose_route() then relays it.
func (c *Call) inDialog(s *requestSpec, server transport.Endpoint, dead []transport.Endpoint) {
	s.remoteTarget = c.remoteTarget
	s.to = "<" + c.remote + ">"
	if c.remoteTag != "" {
		s.to += ";tag=" + c.remoteTag
	}
	s.routes = nil
	for _, r := range c.routes {
		if slices.ContainsFunc(dead, func(e transport.Endpoint) bool { return c.line.routeNames(r, e) }) {
			continue
		}
		s.routes = append(s.routes, r)
	}
	if len(s.routes) == 0 || !c.line.routeNames(s.routes[0], server) {
		s.routes = append([]string{routeTo(server)}, s.routes...)
	}
}

// routeTo is a loose Route entry naming the server at e.
func routeTo(e transport.Endpoint) string {
	u := "sip:" + e.Addr()
	if e.Transport != settings.TransportUDP {
		u += ";transport=" + strings.ToLower(e.TransportName())
	}
	return "<" + u + ";lr>"
}

// routeNames says whether a Route or Record-Route entry names the server
// at e: by its port, and its address, the SRV target it was located at or
// its name as configured (R20).
func (l *Line) routeNames(route string, e transport.Endpoint) bool {
	var a sip.Uri
	v := strings.TrimSpace(route)
	v = strings.TrimSuffix(strings.TrimPrefix(v, "<"), ">")
	if err := sip.ParseUri(v, &a); err != nil {
		return false
	}
	port := a.Port
	if port == 0 {
		port = locate.DefaultPort(e.Transport)
	}
	host := strings.Trim(a.Host, "[]")
	if port != e.Port {
		return false
	}
	if strings.EqualFold(host, e.Host) {
		return true
	}
	for _, s := range l.targets {
		srvHost, _, _ := strings.Cut(s.srv, ":")
		if s.ep == e && (strings.EqualFold(host, srvHost) || strings.EqualFold(host, l.keys[s.cfg].Addr)) {
			return true
		}
	}
	return false
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

// rejectReasons are the reason phrases of the usual rejections.
var rejectReasons = map[int]string{403: "Forbidden", 404: "Not Found", 480: "Temporarily Unavailable",
	486: "Busy Here", 488: "Not Acceptable Here", 600: "Busy Everywhere", 603: "Decline"}

// serverAt returns the index of the line's server at e (host, port and
// transport), or -1.
func (l *Line) serverAt(e transport.Endpoint) int {
	return slices.IndexFunc(l.targets, func(s slot) bool {
		return !s.pending && s.err == nil && addrOf(s.ep) == addrOf(e)
	})
}
