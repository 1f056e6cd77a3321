package wire

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/emiago/sipgo/sip"
)

// branchMagic starts every Via branch (RFC 3261 section 8.1.1.7).
const branchMagic = "z9hG4bK"

// Token returns n random bytes in hex: Call-IDs, tags and branches.
func Token(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// Request is a request the program sends, as its driver decided it. Write
// adds what every request carries: a Via with a fresh branch,
// Max-Forwards, User-Agent and Content-Length.
type Request struct {
	Method    sip.RequestMethod
	URI       sip.Uri   // the Request-URI
	Transport string    // as the Via names it: UDP, TCP or TLS
	Local     [2]string // the host and port it is sent from, as a URI writes them
	From      string    // the sender's name-addr, without its tag
	FromTag   string
	To        string // "" for the From address: a request about the sender's own
	CallID    string
	CSeq      uint32
	Routes    []string // Route values, in order (RFC 3261 12.2.1.1)
	Contact   string   // the Contact URI
	// ContactParams follow the Contact's URI: RFC 5626's
	// ";reg-id=1;+sip.instance=..." on a REGISTER of an outbound flow.
	ContactParams string
	// Stale, when set and not Contact, is a Contact the sender registered
	// before and no longer uses: it goes along with expires=0 so that no
	// binding outlives the connection it named.
	Stale   string
	Expires int // -1: no Expires header
	// AuthHeader and AuthValue are the credentials (Authorization or
	// Proxy-Authorization, Credentials's answer); "" for none.
	AuthHeader, AuthValue string
	Supported             string // the extensions it asks for: "path" (RFC 3327); "" for none
	ContentType           string
	Body                  []byte
}

// Write returns the request's bytes and the branch of its Via.
func (r Request) Write() (msg []byte, branch string) {
	branch = branchMagic + Token(8)
	req := sip.NewRequest(r.Method, r.URI)
	req.AppendHeader(sip.NewHeader("Via", fmt.Sprintf("SIP/2.0/%s %s:%s;branch=%s;rport", r.Transport, r.Local[0], r.Local[1], branch)))
	req.AppendHeader(sip.NewHeader("Max-Forwards", "70"))
	for _, v := range r.Routes {
		req.AppendHeader(sip.NewHeader("Route", v))
	}
	to := r.To
	if to == "" {
		to = r.From
	}
	req.AppendHeader(sip.NewHeader("From", r.From+";tag="+r.FromTag))
	req.AppendHeader(sip.NewHeader("To", to))
	req.AppendHeader(sip.NewHeader("Call-ID", r.CallID))
	req.AppendHeader(sip.NewHeader("CSeq", fmt.Sprintf("%d %s", r.CSeq, r.Method)))
	req.AppendHeader(sip.NewHeader("Contact", "<"+r.Contact+">"+r.ContactParams))
	if r.Stale != "" && r.Stale != r.Contact {
		req.AppendHeader(sip.NewHeader("Contact", "<"+r.Stale+">;expires=0"))
	}
	if r.Expires >= 0 {
		req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(r.Expires)))
	}
	if r.AuthHeader != "" {
		req.AppendHeader(sip.NewHeader(r.AuthHeader, r.AuthValue))
	}
	if r.Supported != "" {
		req.AppendHeader(sip.NewHeader("Supported", r.Supported))
	}
	req.AppendHeader(sip.NewHeader("User-Agent", "sipfailover"))
	if len(r.Body) > 0 {
		req.AppendHeader(sip.NewHeader("Content-Type", r.ContentType))
		req.SetBody(r.Body)
	} else {
		req.AppendHeader(sip.NewHeader("Content-Length", "0"))
	}
	return []byte(req.String()), branch
}

// AnswerInvite is the 200 OK to a delivered INVITE (Reply's headers) with
// our Contact and an SDP body.
func AnswerInvite(invite *sip.Request, tag, contact string, sdp []byte) *sip.Response {
	res := Reply(invite, 200, "OK", tag, sdp)
	res.AppendHeader(sip.NewHeader("Contact", "<"+contact+">"))
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	return res
}
