package runtimetest

import (
	"fmt"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/sipfailover/sipfailover/runtime/transport"
)

// FarEndHost is where the simulated far end of calls lives, behind every
// simulated server (they share one registration database, as the seed's
// servers do).
const FarEndHost = "192.0.2.99"

// SimCall is a call as the simulated far end sees it: set up through the
// servers, answered, acknowledged, ended.
type SimCall struct {
	CallID   string
	Incoming bool     // the far end called the line
	State    string   // "ringing", "up", "ended" or "cancelled"
	Log      []string // "INVITE via primary", "ACK via primary", "BYE via backup" ...
	Via      transport.Endpoint

	farTag, lineTag string
	lineContact     string
	cseq            uint32
	ringing         *sip.Request // an INVITE not yet answered
}

// farEnd answers an INVITE, ACK, BYE or CANCEL that server s forwards to
// the far end; n.mu is held.
func (n *SimNetwork) farEnd(s *SimServer, req *sip.Request, rtt time.Duration) *sip.Response {
	c := n.call(req.CallID().Value())
	if c != nil {
		c.Log = append(c.Log, fmt.Sprintf("%s via %s", req.Method, s.Endpoint))
	}
	switch req.Method {
	case sip.INVITE:
		if c == nil {
			c = &SimCall{CallID: req.CallID().Value(), State: "ringing", farTag: "far" + strconv.Itoa(len(n.calls)+1),
				Log: []string{fmt.Sprintf("INVITE via %s", s.Endpoint)}}
			n.calls = append(n.calls, c)
		}
		c.Via = s.Endpoint
		answer := n.answer(s, req, c)
		if s.Ring <= 0 {
			c.State = "up"
			return answer
		}
		c.ringing = req
		ringing := sip.NewResponseFromRequest(req, 180, "Ringing", nil)
		ringing.To().Params.Add("tag", c.farTag)
		n.reply(s.Endpoint, ringing, rtt)
		n.at(rtt+s.Ring, func() {
			n.mu.Lock()
			defer n.mu.Unlock()
			if c.ringing == req {
				c.ringing, c.State = nil, "up"
				n.reply(s.Endpoint, answer, 0)
			}
		})
		return nil
	case sip.ACK:
		return nil
	case sip.CANCEL:
		if c != nil && c.ringing != nil {
			terminated := sip.NewResponseFromRequest(c.ringing, 487, "Request Terminated", nil)
			terminated.To().Params.Add("tag", c.farTag)
			c.ringing, c.State = nil, "cancelled"
			n.reply(s.Endpoint, terminated, rtt)
		}
		return sip.NewResponseFromRequest(req, 200, "OK", nil)
	default: // BYE
		if c == nil || c.State != "up" {
			return sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil)
		}
		c.State = "ended"
		return sip.NewResponseFromRequest(req, 200, "OK", nil)
	}
}

// answer is the far end's 200 OK to an INVITE through server s, which
// record-routes.
func (n *SimNetwork) answer(s *SimServer, req *sip.Request, c *SimCall) *sip.Response {
	res := sip.NewResponseFromRequest(req, 200, "OK", []byte("v=0\r\no=far 1 1 IN IP4 "+FarEndHost+"\r\ns=-\r\nc=IN IP4 "+FarEndHost+"\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\na=inactive\r\n"))
	res.To().Params.Add("tag", c.farTag)
	res.AppendHeader(sip.NewHeader("Contact", "<sip:far@"+FarEndHost+":5060>"))
	res.AppendHeader(sip.NewHeader("Record-Route", recordRoute(s.Endpoint)))
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	return res
}

func recordRoute(e transport.Endpoint) string {
	return fmt.Sprintf("<sip:%s;lr>", e.Addr())
}

func (n *SimNetwork) call(callID string) *SimCall {
	for _, c := range n.calls {
		if c.CallID == callID {
			return c
		}
	}
	return nil
}

// Calls returns the far end's calls, oldest first.
func (n *SimNetwork) Calls() []SimCall {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]SimCall, len(n.calls))
	for i, c := range n.calls {
		out[i] = *c
		out[i].Log = append([]string(nil), c.Log...)
	}
	return out
}

// CallLine makes the far end call user through the server at via: the
// INVITE reaches the line after a round trip, and the far end acknowledges
// the line's 200 OK. It returns the call's Call-ID.
func (n *SimNetwork) CallLine(via transport.Endpoint, user, domain string) string {
	n.mu.Lock()
	c := &SimCall{CallID: fmt.Sprintf("in%d@%s", len(n.calls)+1, FarEndHost), Incoming: true, State: "ringing",
		farTag: "far" + strconv.Itoa(len(n.calls)+1), Via: via, cseq: 1}
	c.Log = append(c.Log, fmt.Sprintf("INVITE via %s", via))
	n.calls = append(n.calls, c)
	rtt := n.RTT
	n.mu.Unlock()
	req := n.farRequest(c, sip.INVITE, sip.Uri{Scheme: "sip", User: user, Host: domain}, "<sip:"+user+"@"+domain+">")
	req.AppendHeader(sip.NewHeader("Contact", "<sip:far@"+FarEndHost+":5060>"))
	n.at(rtt/2, func() {
		n.handler.HandleRequest(via, req, func(b []byte) { n.fromLine(c, b) })
	})
	return c.CallID
}

// HangUp makes the far end send a BYE for the call through the server at
// via (the dialog's own, or another when it is down).
func (n *SimNetwork) HangUp(callID string, via transport.Endpoint) error {
	n.mu.Lock()
	c := n.call(callID)
	if c == nil || c.State != "up" {
		n.mu.Unlock()
		return fmt.Errorf("simnet: no call %s up at the far end", callID)
	}
	c.cseq++
	c.Log = append(c.Log, fmt.Sprintf("BYE via %s", via))
	target := c.lineContact
	to := fmt.Sprintf("<sip:line@%s>;tag=%s", FarEndHost, c.lineTag)
	rtt := n.RTT
	n.mu.Unlock()
	var uri sip.Uri
	if err := sip.ParseUri(target, &uri); err != nil {
		return fmt.Errorf("simnet: the line's Contact %q: %w", target, err)
	}
	req := n.farRequest(c, sip.BYE, uri, to)
	n.at(rtt/2, func() {
		n.handler.HandleRequest(via, req, func(b []byte) { n.fromLine(c, b) })
	})
	return nil
}

// farRequest builds a request of the far end's call, as the server
// forwards it (its Via on top, its Record-Route for an INVITE).
func (n *SimNetwork) farRequest(c *SimCall, method sip.RequestMethod, ruri sip.Uri, to string) *sip.Request {
	req := sip.NewRequest(method, ruri)
	req.AppendHeader(sip.NewHeader("Via", fmt.Sprintf("SIP/2.0/%s %s;branch=z9hG4bKsrv%s%d", c.Via.TransportName(), c.Via.Addr(), c.farTag, c.cseq)))
	req.AppendHeader(sip.NewHeader("Via", fmt.Sprintf("SIP/2.0/UDP %s:5060;branch=z9hG4bKfar%s%d", FarEndHost, c.farTag, c.cseq)))
	if method == sip.INVITE {
		req.AppendHeader(sip.NewHeader("Record-Route", recordRoute(c.Via)))
	}
	req.AppendHeader(sip.NewHeader("Max-Forwards", "69"))
	req.AppendHeader(sip.NewHeader("From", "<sip:far@"+FarEndHost+">;tag="+c.farTag))
	req.AppendHeader(sip.NewHeader("To", to))
	req.AppendHeader(sip.NewHeader("Call-ID", c.CallID))
	req.AppendHeader(sip.NewHeader("CSeq", fmt.Sprintf("%d %s", c.cseq, method)))
	req.AppendHeader(sip.NewHeader("Content-Length", "0"))
	parsed, err := sip.ParseMessage([]byte(req.String()))
	if err != nil {
		panic(fmt.Sprintf("simnet: bad request: %v", err))
	}
	return parsed.(*sip.Request)
}

// fromLine hears the line's response to a request of the far end's call.
func (n *SimNetwork) fromLine(c *SimCall, b []byte) {
	msg, err := sip.ParseMessage(b)
	res, ok := msg.(*sip.Response)
	if err != nil || !ok {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	method := res.CSeq().MethodName
	c.Log = append(c.Log, fmt.Sprintf("%d to %s", res.StatusCode, method))
	switch {
	case method == sip.INVITE && res.StatusCode >= 300:
		c.State = "ended"
	case method == sip.INVITE && res.StatusCode >= 200 && c.State == "ringing":
		c.State = "up"
		c.lineTag, _ = res.To().Params.Get("tag")
		if ct := res.Contact(); ct != nil {
			c.lineContact = ct.Address.String()
		}
		c.Log = append(c.Log, fmt.Sprintf("ACK via %s", c.Via))
		ack := n.farRequest(c, sip.ACK, sip.Uri{Scheme: "sip", User: "line", Host: FarEndHost}, fmt.Sprintf("<sip:line@%s>;tag=%s", FarEndHost, c.lineTag))
		via := c.Via
		n.at(n.RTT, func() { n.handler.HandleRequest(via, ack, func([]byte) {}) })
	case method == sip.BYE && res.StatusCode < 300:
		c.State = "ended"
	}
}
