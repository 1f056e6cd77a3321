package wire

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// Answer is a response as the runtime acts on it: the message, and every
// header the program reads, parsed once where the response entered.
type Answer struct {
	*sip.Response

	// RetryAfter is a Retry-After's delay (RFC 3261 20.33); 0 for none or
	// one that cannot be read.
	RetryAfter time.Duration
	// MinExpires is a Min-Expires in seconds (RFC 3261 10.2.8), and
	// MinExpiresProblem why there is none to take: "" when there is.
	MinExpires        int
	MinExpiresProblem string
	// Challenge is a 401's WWW-Authenticate or a 407's
	// Proxy-Authenticate; nil for another answer, or for one that cannot
	// be answered, ChallengeErr saying why. AuthHeader names the header
	// that answers it.
	Challenge    *digest.Challenge
	ChallengeErr error
	AuthHeader   string
	// Routes are the Record-Route entries in the order of the message.
	Routes []string

	// What the answer repeats of its request (RFC 3261 8.1.3.3): the top
	// Via's branch, the Call-ID, the From tag and user, the To tag (""
	// for none), and the CSeq.
	Branch, CallID string
	FromTag, ToTag string
	FromUser       string
	CSeq           uint32
	Method         sip.RequestMethod

	// FlowTimer is the registrar's Flow-Timer (RFC 5626 4.4.1): how often
	// the flow wants a keep-alive; 0 when the answer has none.
	FlowTimer time.Duration

	expires  string    // the Expires header's value; "" when absent
	contacts []contact // every Contact entry
}

// contact is one Contact entry: its URI, and its expires parameter when
// it has one.
type contact struct {
	uri        sip.Uri
	expires    string
	hasExpires bool
}

// ParseAnswer reads res, a response that CheckResponse passed (so its
// Via, From, To, Call-ID and CSeq are there).
func ParseAnswer(res *sip.Response) *Answer {
	a := &Answer{Response: res, Routes: RecordRoutes(res), FromUser: res.From().Address.User,
		CSeq: res.CSeq().SeqNo, Method: res.CSeq().MethodName}
	a.Branch, _ = res.Via().Params.Get("branch")
	a.CallID, a.FromTag, a.ToTag = DialogOf(res)
	if h := res.GetHeader("Retry-After"); h != nil {
		v, _, _ := strings.Cut(strings.TrimSpace(h.Value()), ";")
		v, _, _ = strings.Cut(strings.TrimSpace(v), " ")
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			a.RetryAfter = time.Duration(n) * time.Second
		}
	}
	switch h := res.GetHeader("Min-Expires"); {
	case h == nil:
		a.MinExpiresProblem = fmt.Sprintf("%d without Min-Expires", res.StatusCode)
	default:
		v, ok := ParseSeconds(h.Value())
		if !ok {
			a.MinExpiresProblem = fmt.Sprintf("bad Min-Expires %q", h.Value())
		}
		a.MinExpires = v
	}
	if res.StatusCode == sip.StatusUnauthorized || res.StatusCode == sip.StatusProxyAuthRequired {
		a.Challenge, a.AuthHeader, a.ChallengeErr = challengeOf(res)
	}
	if h := res.GetHeader("Expires"); h != nil {
		a.expires = h.Value()
	}
	if h := res.GetHeader("Flow-Timer"); h != nil {
		if v, ok := ParseSeconds(h.Value()); ok && v > 0 {
			a.FlowTimer = time.Duration(v) * time.Second
		}
	}
	for _, h := range res.GetHeaders("Contact") {
		for _, v := range SplitValues(h.Value()) {
			var c contact
			params := sip.NewParams()
			if _, err := sip.ParseAddressValue(v, &c.uri, &params); err != nil {
				continue
			}
			c.expires, c.hasExpires = params.Get("expires")
			a.contacts = append(a.contacts, c)
		}
	}
	return a
}

// DialogOf reads what names the dialog of m, a message that passed
// CheckRequest or CheckResponse: its Call-ID, its From tag and its To tag
// ("" for a tag it lacks).
func DialogOf(m sip.Message) (callID, fromTag, toTag string) {
	fromTag, _ = m.From().Params.Get("tag")
	toTag, _ = m.To().Params.Get("tag")
	return m.CallID().Value(), fromTag, toTag
}

// Challenged is the part of a that later requests reuse (RFC 7616 3.4):
// its digest challenge and the header that answers it, without the
// message, for a line to keep as long as the server's nonce lasts.
func (a *Answer) Challenged() *Answer {
	return &Answer{Challenge: a.Challenge, ChallengeErr: a.ChallengeErr, AuthHeader: a.AuthHeader}
}

// Stale says whether a challenge to a request that carried credentials
// says only that their nonce expired (stale=true, RFC 7616 3.3): the
// credentials were right, and the request goes again with the new nonce.
func (a *Answer) Stale() bool { return a.Challenge != nil && a.Challenge.Stale }

// Granted reads the expiry a 2xx to REGISTER granted the binding of ours
// (user, host, port): the expires parameter of that binding's Contact,
// else the Expires header (RFC 3261 10.2.4). A value that is no number,
// or negative, is not a grant and is passed over; ok is false when no
// grant is left.
func (a *Answer) Granted(ours sip.Uri) (secs int, ok bool) {
	for _, c := range a.contacts {
		if c.hasExpires && sameContact(c.uri, ours) {
			secs, ok = ParseSeconds(c.expires)
		}
	}
	if !ok && a.expires != "" {
		secs, ok = ParseSeconds(a.expires)
	}
	return secs, ok
}

// Target is the Contact of the answer: a dialog's remote target (RFC 3261
// 12.1.2); "" when it has none.
func (a *Answer) Target() string {
	if ct := a.Contact(); ct != nil {
		return ct.Address.String()
	}
	return ""
}

// sameContact says whether a Contact a server returned is ours.
func sameContact(a, b sip.Uri) bool {
	return a.User == b.User && strings.EqualFold(a.Host, b.Host) && a.Port == b.Port
}

// challengeOf parses a 401's WWW-Authenticate or a 407's
// Proxy-Authenticate, and names the header that answers it.
func challengeOf(res *sip.Response) (*digest.Challenge, string, error) {
	challengeHdr, name := "WWW-Authenticate", "Authorization"
	if res.StatusCode == sip.StatusProxyAuthRequired {
		challengeHdr, name = "Proxy-Authenticate", "Proxy-Authorization"
	}
	h := res.GetHeader(challengeHdr)
	if h == nil {
		return nil, name, fmt.Errorf("%d without %s", res.StatusCode, challengeHdr)
	}
	chal, err := digest.ParseChallenge(h.Value())
	if err != nil {
		return nil, name, fmt.Errorf("bad %s: %w", challengeHdr, err)
	}
	return chal, name, nil
}

// Credentials computes the header that answers the challenge of a for a
// request of method to uri, with nonce count nc: MD5 or SHA-256 (RFC
// 8760), qop auth.
func (a *Answer) Credentials(method sip.RequestMethod, uri, user, password string, nc int) (name, value string, err error) {
	if a.Challenge == nil {
		if a.ChallengeErr != nil {
			return "", "", a.ChallengeErr
		}
		if a.Response == nil {
			return "", "", fmt.Errorf("no challenge")
		}
		return "", "", fmt.Errorf("%d is no challenge", a.StatusCode)
	}
	cred, err := digest.Digest(a.Challenge, digest.Options{Method: string(method), URI: uri, Username: user, Password: password, Count: nc})
	if err != nil {
		return "", "", fmt.Errorf("digest: %w", err)
	}
	return a.AuthHeader, cred.String(), nil
}
