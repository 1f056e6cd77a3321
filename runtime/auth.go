package runtime

import (
	"fmt"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// credentials are what a server's latest challenge lets the line send
// before it is asked: the nonce is reused with its count going up (RFC 7616
// 3.4), so a refresh costs one transaction instead of two until the server
// says the nonce is stale.
type credentials struct {
	challenge *sip.Response // the 401 or 407
	nc        int           // the nonce count last used
}

// authorize adds digest credentials for s's server to s: for challenge when
// given, which becomes the server's latest, else for the server's latest
// challenge if there is one. It fails only for a challenge given here that
// cannot be answered (an unknown algorithm, a missing header); credentials
// that cannot be reused are forgotten and the request goes without.
func (l *Line) authorize(s *requestSpec, challenge *sip.Response) error {
	server := s.dst.at()
	if challenge != nil {
		l.creds[server] = &credentials{challenge: challenge}
	}
	c := l.creds[server]
	if c == nil {
		return nil
	}
	c.nc++
	ruri := s.requestURI()
	name, val, err := answer(c.challenge, s.method, ruri.String(), l.cfg.AuthUser, l.cfg.Password, c.nc)
	if err != nil {
		delete(l.creds, server)
		if challenge == nil {
			return nil
		}
		return fmt.Errorf("cannot answer the challenge of %s: %w", s.dst, err)
	}
	s.auth, s.authVal = name, val
	return nil
}

// answer computes the Authorization (401) or Proxy-Authorization (407)
// header for a challenge, with nonce count nc: MD5 or SHA-256 (RFC 8760),
// qop auth.
func answer(res *sip.Response, method sip.RequestMethod, uri, user, password string, nc int) (name, value string, err error) {
	chal, name, err := challengeOf(res)
	if err != nil {
		return "", "", err
	}
	cred, err := digest.Digest(chal, digest.Options{Method: string(method), URI: uri, Username: user, Password: password, Count: nc})
	if err != nil {
		return "", "", fmt.Errorf("digest: %w", err)
	}
	return name, cred.String(), nil
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
		return nil, "", fmt.Errorf("%d without %s", res.StatusCode, challengeHdr)
	}
	chal, err := digest.ParseChallenge(h.Value())
	if err != nil {
		return nil, "", fmt.Errorf("bad %s: %w", challengeHdr, err)
	}
	return chal, name, nil
}

// stale says whether a challenge to a request that carried credentials
// says only that their nonce expired (stale=true, RFC 7616 3.3): the
// credentials were right, and the request goes again with the new nonce.
func stale(res *sip.Response) bool {
	chal, _, err := challengeOf(res)
	return err == nil && chal.Stale
}
