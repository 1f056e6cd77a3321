package locate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// DNSResolver asks DNS servers: over UDP, and again over TCP when an
// answer comes back truncated; each server in turn until one answers.
type DNSResolver struct {
	servers []string      // host:port
	timeout time.Duration // per server and transport
	// system sends A and AAAA questions to the host's own resolver, which
	// reads /etc/hosts first, as every other program on the host does; it
	// hides TTLs, so its answers are kept systemTTL.
	system bool
}

// systemTTL is how long an address the host's resolver gave is kept.
const systemTTL = 60

// NewDNSResolver returns a resolver that asks servers (host:port, IP
// addresses). With none it asks those of /etc/resolv.conf, and the host's
// resolver for addresses, so that /etc/hosts names work as elsewhere.
func NewDNSResolver(servers []string) *DNSResolver {
	r := &DNSResolver{servers: servers, timeout: 2 * time.Second}
	if len(servers) == 0 {
		r.system = true
		if conf, err := dns.ClientConfigFromFile("/etc/resolv.conf"); err == nil {
			for _, s := range conf.Servers {
				r.servers = append(r.servers, net.JoinHostPort(s, conf.Port))
			}
		}
		if len(r.servers) == 0 {
			r.servers = []string{"127.0.0.1:53"}
		}
	}
	return r
}

// Exchange implements Resolver.
func (r *DNSResolver) Exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	if len(q.Question) != 1 {
		return nil, errors.New("one question at a time")
	}
	if qt := q.Question[0].Qtype; r.system && (qt == dns.TypeA || qt == dns.TypeAAAA) {
		return r.host(ctx, q)
	}
	q.RecursionDesired = true
	var last error
	for _, s := range r.servers {
		for _, network := range []string{"udp", "tcp"} {
			c := dns.Client{Net: network, Timeout: r.timeout}
			m, _, err := c.ExchangeContext(ctx, q, s)
			if err != nil {
				last = fmt.Errorf("%s: %w", s, err)
				break // the next server
			}
			if !m.Truncated {
				return m, nil
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	if last == nil {
		last = errors.New("no DNS server answered")
	}
	return nil, last
}

// host answers an A or AAAA question through the host's resolver.
func (r *DNSResolver) host(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	question := q.Question[0]
	network := "ip4"
	if question.Qtype == dns.TypeAAAA {
		network = "ip6"
	}
	m := new(dns.Msg)
	m.SetReply(q)
	ips, err := net.DefaultResolver.LookupNetIP(ctx, network, question.Name)
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return m, nil // no such name, or none of this family: an empty answer
	case err != nil:
		return nil, err
	}
	hdr := dns.RR_Header{Name: question.Name, Rrtype: question.Qtype, Class: dns.ClassINET, Ttl: systemTTL}
	for _, ip := range ips {
		ip = ip.Unmap()
		switch {
		case question.Qtype == dns.TypeA && ip.Is4():
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: ip.AsSlice()})
		case question.Qtype == dns.TypeAAAA && ip.Is6():
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: ip.AsSlice()})
		}
	}
	return m, nil
}

// ParseDNSServer checks one DNS server setting: an IP address, with an
// optional port (default 53); it returns host:port.
func ParseDNSServer(s string) (string, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return "", fmt.Errorf("%q: port 0", s)
		}
		return ap.String(), nil
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return netip.AddrPortFrom(a, 53).String(), nil
	}
	return "", fmt.Errorf("%q is not an IP address with an optional port (127.0.0.1:5353, [::1]:53)", s)
}
