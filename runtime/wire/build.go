package wire

import (
	"strconv"

	"github.com/emiago/sipgo/sip"
)

// Reply is the answer code to req (RFC 3261 8.2.6): its Via, From,
// Call-ID and CSeq, its To with tag as the To tag when the request's To
// has none (sipgo's own random tag otherwise), and our SIP version even
// where the request spoke another (a 505). It answers a request that
// failed CheckRequest too: a 400 for one without a To has none.
func Reply(req *sip.Request, code int, reason, tag string, body []byte) *sip.Response {
	res := sip.NewResponseFromRequest(req, code, reason, body)
	res.SipVersion = "SIP/2.0"
	if to := req.To(); to != nil && tag != "" {
		if _, tagged := to.Params.Get("tag"); !tagged {
			res.To().Params.Add("tag", tag) // replaces sipgo's
		}
	}
	return res
}

// AckOfFailure is the ACK of a final failure to invite (RFC 3261
// 17.1.1.3): the same Request-URI, top Via, Route, From, Call-ID and CSeq
// number, and the To of the answer.
func AckOfFailure(invite *sip.Request, to *sip.ToHeader) *sip.Request {
	return repeat(invite, sip.ACK, to, "Route", "From", "Call-ID")
}

// CancelOf is the CANCEL of req (RFC 3261 9.1): the same Request-URI, top
// Via, Route, From, To, Call-ID and CSeq number.
func CancelOf(req *sip.Request) *sip.Request {
	return repeat(req, sip.CANCEL, nil, "Route", "From", "To", "Call-ID")
}

// repeat is a request of method with req's top Via, every value of the
// named headers of req and its CSeq number, and to as its To when given.
func repeat(req *sip.Request, method sip.RequestMethod, to *sip.ToHeader, names ...string) *sip.Request {
	out := sip.NewRequest(method, req.Recipient)
	if via := req.Via(); via != nil {
		out.AppendHeader(sip.NewHeader("Via", via.Value()))
	}
	for _, h := range names {
		for _, v := range req.GetHeaders(h) {
			out.AppendHeader(sip.NewHeader(h, v.Value()))
		}
	}
	if to != nil {
		out.AppendHeader(sip.NewHeader("To", to.Value()))
	}
	out.AppendHeader(sip.NewHeader("CSeq", strconv.Itoa(int(req.CSeq().SeqNo))+" "+string(method)))
	out.AppendHeader(sip.NewHeader("Max-Forwards", "70"))
	out.AppendHeader(sip.NewHeader("Content-Length", "0"))
	return out
}
