package runtime

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipfailover/sipfailover/runtime/transport"
	"github.com/sipfailover/sipfailover/runtime/wire"
)

// dialog is a registration dialog: one Call-ID, one From tag, rising CSeq
// (RFC 3261 section 10.2). The probe has its own (R10).
type dialog struct {
	callID string
	tag    string
	cseq   uint32
}

func newDialog() dialog { return dialog{callID: wire.Token(12), tag: wire.Token(6)} }

// requestSpec is what a request needs besides its dialog.
type requestSpec struct {
	method  sip.RequestMethod
	dst     transport.Endpoint
	local   [2]string // host, port
	user    string
	domain  string
	display string
	expires int // REGISTER: -1 for no Expires header
	// stale, for a REGISTER, is a Contact the line registered at the server
	// before and does not use now (an earlier connection's port): it goes
	// along with expires=0, so that no binding outlives its connection.
	stale   string
	auth    string // header name, "" for none
	authVal string
	// target, when set, is the Request-URI and To of a request to someone
	// else (R8, an INVITE); otherwise the request is about the line's own
	// address.
	target      string
	contentType string
	body        []byte
	// In a dialog (BYE): the Request-URI is the remote target, To carries
	// the remote tag, and the route set goes in Route (RFC 3261 12.2.1.1).
	remoteTarget string
	to           string
	routes       []string
	// Behind outbound proxies (R22): the registrar's URI, the Request-URI
	// of a request about the line's own address; what Supported asks.
	registrar sip.Uri
	supported string
	// RFC 5626 outbound (R24): the parameters after a REGISTER's Contact
	// (reg-id, +sip.instance), and ob, which marks the Contact URI of a
	// dialog-forming request as one to reach over its flow.
	contactParams string
	ob            bool
}

// requestURI is the Request-URI the request carries; digest credentials
// are computed over it too.
func (s requestSpec) requestURI() sip.Uri {
	ruri := sip.Uri{Scheme: "sip", Host: s.domain}
	switch {
	case s.remoteTarget != "":
		sip.ParseUri(s.remoteTarget, &ruri) // taken from a parsed Contact
	case s.target != "":
		sip.ParseUri(s.target, &ruri) // checked by Line.Send and Line.Dial
	case s.method == sip.OPTIONS:
		ruri = sip.Uri{Scheme: "sip", Host: uriHost(s.dst.Host), Port: s.dst.Port}
	case s.registrar.Host != "":
		ruri = s.registrar
	}
	return ruri
}

// uriHost writes host as a SIP URI or a Via holds it: an IPv6 address in
// brackets (RFC 3261 25.1).
func uriHost(host string) string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		return "[" + host + "]"
	}
	return host
}

// contactURI is the Contact the request carries, as it is written.
func (s requestSpec) contactURI() string {
	u := fmt.Sprintf("sip:%s@%s:%s;transport=%s", s.user, s.local[0], s.local[1], strings.ToLower(s.dst.TransportName()))
	if s.ob {
		u += ";ob"
	}
	return u
}

// contact is the Contact URI the request carries.
func (s requestSpec) contact() sip.Uri {
	port, _ := strconv.Atoi(s.local[1])
	return sip.Uri{Scheme: "sip", User: s.user, Host: s.local[0], Port: port}
}

// build writes a request with a fresh branch and the dialog's next CSeq; it
// returns the bytes and the branch.
func (s requestSpec) build(d *dialog) ([]byte, string) {
	d.cseq++
	from := fmt.Sprintf("<sip:%s@%s>", s.user, s.domain)
	if s.display != "" {
		from = strconv.Quote(s.display) + " " + from
	}
	to := s.to
	if to == "" && s.target != "" {
		to = "<" + s.target + ">"
	}
	return wire.Request{Method: s.method, URI: s.requestURI(), Transport: s.dst.TransportName(), Local: s.local,
		From: from, FromTag: d.tag, To: to, CallID: d.callID, CSeq: d.cseq, Routes: s.routes,
		Contact: s.contactURI(), ContactParams: s.contactParams, Stale: s.stale, Expires: s.expires, AuthHeader: s.auth, AuthValue: s.authVal,
		Supported: s.supported, ContentType: s.contentType, Body: s.body}.Write()
}

// minExpiry is the floor of a granted expiry: a server that grants less
// is taken to have granted this much, so that no answer can make a line
// refresh more often than every 4 s (I11).
const minExpiry = 5 * time.Second

// grantedExpiry is the expiry a 2xx to REGISTER granted the binding of
// contact (wire.Answer.Granted), else asked (RFC 3261 10.2.4), clamped to
// [minExpiry, asked]. zero reports a grant of 0: the server removed the
// binding the line asked to keep.
func grantedExpiry(res *wire.Answer, asked int, contact sip.Uri) (d time.Duration, zero bool) {
	secs, ok := res.Granted(contact)
	if !ok {
		secs = asked
	}
	if secs == 0 {
		return 0, true
	}
	return min(max(time.Duration(min(secs, asked))*time.Second, minExpiry), time.Duration(asked)*time.Second), false
}
