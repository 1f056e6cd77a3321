package locate

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/miekg/dns"
)

// Transport codes, as the settings number them (the seed's, and Auto).
const (
	UDP  = 0
	TCP  = 1
	Auto = 2 // NAPTR records choose (RFC 3263 4.1)
	TLS  = 3
)

// MaxTargets is the most targets one lookup takes: a line has at most as
// many servers, so the rest are never tried and their addresses are not
// asked for.
const MaxTargets = 8

// Bounds of the time a lookup's answer is kept. The floor keeps a TTL of 0
// (dnsmasq's default for its own records) from asking on every use; a
// failed lookup is asked again after FailedTTL.
const (
	MinTTL    = 5 * time.Second
	MaxTTL    = 24 * time.Hour
	FailedTTL = 5 * time.Second
)

// Resolver answers the locator's DNS queries.
type Resolver interface {
	// Exchange sends q and returns the answer, or an error when none came
	// (a timeout, a refused connection). It may block on the network: the
	// locator calls it off every lock of the agent, bounded by ctx.
	Exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error)
}

// InstantResolver is a Resolver that answers from memory without
// blocking, such as a zone a test keeps in virtual time. The locator then
// resolves inline, at the moment a line asks, so that a run in virtual
// time replays exactly; its questions are not paced.
type InstantResolver interface {
	Resolver
	Instant()
}

// Key is a server as configured, what it is located by.
type Key struct {
	Addr      string // IP address or domain name, as configured
	Port      int    // 0: look up SRV (RFC 3263 4.2)
	Transport int    // Auto: NAPTR chooses (RFC 3263 4.1)
	TLSName   string // the name a TLS server's certificate must carry
}

// String is the server as configured: "pbx.example.com (SRV, auto)".
func (k Key) String() string {
	how := "SRV"
	if k.Port != 0 {
		how = strconv.Itoa(k.Port)
	}
	tr := map[int]string{UDP: "UDP", TCP: "TCP", TLS: "TLS", Auto: "auto"}[k.Transport]
	return fmt.Sprintf("%s (%s, %s)", k.Addr, how, tr)
}

// Target is one located address of a server.
type Target struct {
	Host       string // an IP address
	Port       int
	Transport  int
	ServerName string // the name a TLS server's certificate must carry
	SRV        string // the SRV target and port it came from, "pbx1.example.com:5060"; "" for none
}

// Literal returns the one target of a server given by IP address, and
// whether it is one.
func Literal(k Key) (Target, bool) {
	ip := net.ParseIP(k.Addr)
	if ip == nil {
		return Target{}, false
	}
	tr := k.Transport
	if tr == Auto {
		tr = UDP // RFC 3263 4.1: a numeric address gets UDP
	}
	port := k.Port
	if port == 0 {
		port = DefaultPort(tr)
	}
	return Target{Host: ip.String(), Port: port, Transport: tr, ServerName: k.TLSName}, true
}

// DefaultPort is SIP's port for transport: 5061 for TLS, else 5060.
func DefaultPort(transport int) int {
	if transport == TLS {
		return 5061
	}
	return 5060
}
