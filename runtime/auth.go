package runtime

import (
	"fmt"

	"github.com/sipfailover/sipfailover/runtime/wire"
)

// credentials are what a server's latest challenge lets the line send
// before it is asked: the nonce is reused with its count going up (RFC 7616
// 3.4), so a refresh costs one transaction instead of two until the server
// says the nonce is stale.
type credentials struct {
	challenge *wire.Answer // the 401 or 407, its challenge alone (Answer.Challenged)
	nc        int          // the nonce count last used
}

// authorize adds digest credentials for s's server to s: for challenge when
// given, which becomes the server's latest, else for the server's latest
// challenge if there is one. It fails only for a challenge given here that
// cannot be answered (an unknown algorithm, a missing header); credentials
// that cannot be reused are forgotten and the request goes without.
func (l *Line) authorize(s *requestSpec, challenge *wire.Answer) error {
	server := addrOf(s.dst)
	if challenge != nil {
		l.creds[server] = &credentials{challenge: challenge.Challenged()}
	}
	c := l.creds[server]
	if c == nil {
		return nil
	}
	c.nc++
	ruri := s.requestURI()
	name, val, err := c.challenge.Credentials(s.method, ruri.String(), l.cfg.AuthUser, l.cfg.Password, c.nc)
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
