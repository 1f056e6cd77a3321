package locate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/time/rate"
)

// Lookup is one lookup: the resolver it asks and that resolver's pace
// (nil: none), and the randomness that orders SRV records of one priority
// by weight: Draw returns a number in [0, n], drawn as the agent draws
// its jitter, so that a run replays.
type Lookup struct {
	Resolver Resolver
	Pace     *rate.Limiter
	Draw     func(n int64) int64
}

// maxSRVTried bounds the SRV records of one answer whose addresses a
// lookup asks for (R20).
const maxSRVTried = 2 * MaxTargets

// Questions to one resolver are paced: 100 at once (a few lookups' worth),
// then 100 a second, so that many names looked up together (a fleet's, at
// start) come to the resolver as a stream, not a burst of thousands; a
// lookup still ends within its 10 s with a thousand questions queued
// before it. An InstantResolver (a zone in virtual time) is not paced.
const (
	questionsPerSecond = 100
	questionsAtOnce    = 100
)

// NewPace is the pace of questions to a resolver, to share among the
// lookups that ask it.
func NewPace() *rate.Limiter { return rate.NewLimiter(questionsPerSecond, questionsAtOnce) }

// service is one SRV name to ask and the transport its targets take.
type service struct {
	name      string
	transport int
}

var srvPrefix = map[int]string{UDP: "_sip._udp.", TCP: "_sip._tcp.", TLS: "_sips._tcp."}

// naptrService maps the NAPTR services RFC 3263 defines to transports.
var naptrService = map[string]int{"SIP+D2U": UDP, "SIP+D2T": TCP, "SIPS+D2T": TLS}

// Resolve looks k up (RFC 3263 4.1, 4.2) and returns its targets in order
// and the shortest TTL of the records that gave them.
func (lk Lookup) Resolve(ctx context.Context, k Key) ([]Target, time.Duration, error) {
	ttl := uint32(MaxTTL / time.Second)
	note := func(h *dns.RR_Header) { ttl = min(ttl, h.Ttl) }
	var ts []Target
	add := func(ips []net.IP, port, transport int, srv string) {
		for _, ip := range ips {
			if ip.IsUnspecified() || ip.IsMulticast() {
				continue // no server can be there: a broken record, not a target
			}
			t := Target{Host: ip.String(), Port: port, Transport: transport, ServerName: k.TLSName, SRV: srv}
			if !slices.ContainsFunc(ts, func(x Target) bool { return x.Host == t.Host && x.Port == t.Port && x.Transport == t.Transport }) {
				ts = append(ts, t)
			}
		}
	}
	seconds := func() time.Duration { return time.Duration(ttl) * time.Second }
	tr := k.Transport
	if k.Port != 0 {
		if tr == Auto {
			tr = UDP // RFC 3263 4.1: a name with a port gets UDP
		}
		ips, err := lk.addresses(ctx, k.Addr, nil, note)
		if err != nil {
			return nil, 0, err
		}
		add(ips, k.Port, tr, "")
		return ts, seconds(), nil
	}

	var services []service
	if tr == Auto {
		var err error
		if services, err = lk.naptr(ctx, k.Addr, note); err != nil {
			return nil, 0, err
		}
		if len(services) == 0 { // no NAPTR: every SRV service, UDP first (RFC 3263 4.1)
			for _, t := range []int{UDP, TCP, TLS} {
				services = append(services, service{srvPrefix[t] + k.Addr, t})
			}
		}
	} else {
		services = []service{{srvPrefix[tr] + k.Addr, tr}}
	}
	// A line uses at most MaxTargets places: the targets past them are
	// never tried, and their addresses are not asked for. Nor are those
	// of more SRV records than twice that, whatever their addresses: an
	// answer of 500 records costs a handful of questions, not 1,000.
	found := false
	var errs []error
	tried := 0
	for _, s := range services {
		if len(ts) >= MaxTargets || tried >= maxSRVTried {
			break
		}
		m, err := lk.query(ctx, s.name, dns.TypeSRV)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var srvs []*dns.SRV
		for _, rr := range m.Answer {
			if r, ok := rr.(*dns.SRV); ok {
				srvs = append(srvs, r)
			}
		}
		if len(srvs) == 0 {
			continue
		}
		found = true
		for _, r := range lk.orderSRV(srvs) {
			if len(ts) >= MaxTargets || tried >= maxSRVTried {
				break
			}
			note(&r.Hdr)
			if r.Target == "." || r.Port == 0 {
				continue // RFC 2782: the service is decidedly not available here; port 0 is no port
			}
			tried++
			ips, err := lk.addresses(ctx, r.Target, m.Extra, note)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			add(ips, int(r.Port), s.transport, strings.TrimSuffix(r.Target, ".")+":"+strconv.Itoa(int(r.Port)))
		}
	}
	ts = ts[:min(len(ts), MaxTargets)]
	if !found {
		if len(errs) > 0 {
			return nil, 0, errors.Join(errs...)
		}
		// No SRV records: the name's own addresses on the default port
		// (RFC 3263 4.2).
		if tr == Auto {
			tr = UDP
		}
		ips, err := lk.addresses(ctx, k.Addr, nil, note)
		if err != nil {
			return nil, 0, err
		}
		add(ips, DefaultPort(tr), tr, "")
	}
	if len(ts) == 0 {
		if len(errs) > 0 {
			return nil, 0, errors.Join(errs...)
		}
		return nil, 0, fmt.Errorf("%s: every SRV target is \".\": no SIP service there", k.Addr)
	}
	return ts, seconds(), nil
}

// naptr returns the SRV names the NAPTR records of name point to, for the
// transports the runtime has, by order and preference (RFC 3403, RFC 3263
// 4.1); none when name has no NAPTR records.
func (lk Lookup) naptr(ctx context.Context, name string, note func(*dns.RR_Header)) ([]service, error) {
	m, err := lk.query(ctx, name, dns.TypeNAPTR)
	if err != nil {
		return nil, err
	}
	var rs []*dns.NAPTR
	for _, rr := range m.Answer {
		r, ok := rr.(*dns.NAPTR)
		if !ok || !strings.EqualFold(r.Flags, "s") || r.Replacement == "." {
			continue
		}
		if _, ok := naptrService[strings.ToUpper(r.Service)]; ok {
			rs = append(rs, r)
		}
	}
	slices.SortStableFunc(rs, func(a, b *dns.NAPTR) int {
		return cmp.Or(cmp.Compare(a.Order, b.Order), cmp.Compare(a.Preference, b.Preference))
	})
	var out []service
	for _, r := range rs {
		note(&r.Hdr)
		out = append(out, service{strings.TrimSuffix(r.Replacement, "."), naptrService[strings.ToUpper(r.Service)]})
	}
	return out, nil
}

// orderSRV orders SRV records as RFC 2782 says: by priority, and within a
// priority by a weighted random choice drawn from the agent's seeded
// randomness, so that a run replays.
func (lk Lookup) orderSRV(rs []*dns.SRV) []*dns.SRV {
	rs = slices.Clone(rs)
	slices.SortStableFunc(rs, func(a, b *dns.SRV) int { return cmp.Compare(a.Priority, b.Priority) })
	out := make([]*dns.SRV, 0, len(rs))
	for len(rs) > 0 {
		n := 1
		for n < len(rs) && rs[n].Priority == rs[0].Priority {
			n++
		}
		group := slices.Clone(rs[:n])
		rs = rs[n:]
		// Weight 0 first, so that it has a small chance when others weigh.
		slices.SortStableFunc(group, func(a, b *dns.SRV) int { return cmp.Compare(min(a.Weight, 1), min(b.Weight, 1)) })
		for len(group) > 0 {
			sum := int64(0)
			for _, r := range group {
				sum += int64(r.Weight)
			}
			pick, run := lk.Draw(sum), int64(0)
			i := 0
			for ; i < len(group)-1; i++ {
				if run += int64(group[i].Weight); run >= pick {
					break
				}
			}
			out = append(out, group[i])
			group = slices.Delete(group, i, i+1)
		}
	}
	return out
}

// addresses returns the IPv4 then IPv6 addresses of name, from extra (the
// additional section of the SRV answer) when it has them, else by A and
// AAAA queries.
func (lk Lookup) addresses(ctx context.Context, name string, extra []dns.RR, note func(*dns.RR_Header)) ([]net.IP, error) {
	fqdn := dns.Fqdn(name)
	var v4, v6 []net.IP
	collect := func(rrs []dns.RR) {
		for _, rr := range rrs {
			if !strings.EqualFold(rr.Header().Name, fqdn) {
				continue
			}
			switch r := rr.(type) {
			case *dns.A:
				note(&r.Hdr)
				v4 = append(v4, r.A)
			case *dns.AAAA:
				note(&r.Hdr)
				v6 = append(v6, r.AAAA)
			}
		}
	}
	collect(extra)
	if len(v4)+len(v6) > 0 {
		return append(v4, v6...), nil
	}
	var errs []error
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		m, err := lk.query(ctx, name, qt)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		collect(m.Answer)
	}
	if ips := append(v4, v6...); len(ips) > 0 {
		return ips, nil
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return nil, fmt.Errorf("%s has no address (no A or AAAA record)", strings.TrimSuffix(name, "."))
}

// query asks one question; an answer other than success or "no such name"
// is an error that names the question.
func (lk Lookup) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	what := dns.TypeToString[qtype] + " " + strings.TrimSuffix(name, ".")
	if _, instant := lk.Resolver.(InstantResolver); !instant && lk.Pace != nil {
		if err := lk.Pace.Wait(ctx); err != nil {
			return nil, fmt.Errorf("DNS %s: no turn to ask within the lookup's time: %w", what, err)
		}
	}
	m, err := lk.Resolver.Exchange(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("DNS %s: %w", what, err)
	}
	if m == nil || m.Id != q.Id {
		return nil, fmt.Errorf("DNS %s: an answer to another question", what)
	}
	if m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError {
		return nil, fmt.Errorf("DNS %s: %s", what, dns.RcodeToString[m.Rcode])
	}
	return m, nil
}
