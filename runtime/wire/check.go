package wire

import (
	"fmt"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// BadRequest is the answer a request gets at the edge instead of reaching
// a handler.
type BadRequest struct {
	Code   int
	Reason string
}

func (b *BadRequest) Error() string { return fmt.Sprintf("%d %s", b.Code, b.Reason) }

// CheckRequest returns nil for a request that handlers may use, else the
// answer it gets (RFC 3261 8.2).
func CheckRequest(req *sip.Request) *BadRequest {
	if req.SipVersion != "SIP/2.0" {
		return &BadRequest{505, "Version Not Supported"}
	}
	if name := missingHeader(req); name != "" {
		return &BadRequest{400, "Missing or Bad " + name}
	}
	if mf := req.MaxForwards(); mf == nil || *mf > 255 {
		return &BadRequest{400, "Missing or Bad Max-Forwards"}
	}
	if name := repeatedHeader(req); name != "" {
		return &BadRequest{400, "More Than One " + name}
	}
	if req.CSeq().MethodName != req.Method {
		return &BadRequest{400, "CSeq Method Does Not Match"}
	}
	switch strings.ToLower(req.Recipient.Scheme) {
	case "sip", "sips":
	default:
		return &BadRequest{416, "Unsupported URI Scheme"}
	}
	return nil
}

// CheckResponse returns an error for a response that no transaction may
// take: another SIP version or a mandatory header missing or unreadable
// (RFC 3261 8.1.3.3).
func CheckResponse(res *sip.Response) error {
	if res.SipVersion != "SIP/2.0" {
		return fmt.Errorf("version %q", res.SipVersion)
	}
	if name := missingHeader(res); name != "" {
		return fmt.Errorf("missing or bad %s", name)
	}
	if name := repeatedHeader(res); name != "" {
		return fmt.Errorf("more than one %s", name)
	}
	if res.StatusCode < 100 || res.StatusCode > 699 {
		return fmt.Errorf("status code %d", res.StatusCode)
	}
	return nil
}

// missingHeader names the first of Via, From, To, Call-ID and CSeq that m
// lacks or that does not parse; "" when all are there.
func missingHeader(m sip.Message) string {
	switch {
	case m.Via() == nil:
		return "Via"
	case m.From() == nil:
		return "From"
	case m.To() == nil:
		return "To"
	case m.CallID() == nil || m.CallID().Value() == "":
		return "Call-ID"
	case m.CSeq() == nil:
		return "CSeq"
	}
	return ""
}

// repeatedHeader names the first of the headers that a message carries
// once (RFC 3261 7.3.1: From, To, Call-ID, CSeq, Max-Forwards) that it
// carries more than once, in full or compact form; "" when none is.
func repeatedHeader(m sip.Message) string {
	for _, h := range [][2]string{{"From", "f"}, {"To", "t"}, {"Call-ID", "i"}, {"CSeq", ""}, {"Max-Forwards", ""}} {
		n := len(m.GetHeaders(h[0]))
		if h[1] != "" {
			n += len(m.GetHeaders(h[1]))
		}
		if n > 1 {
			return h[0]
		}
	}
	return ""
}
