package wire

import (
	"strconv"

	"github.com/emiago/sipgo/sip"
)

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
