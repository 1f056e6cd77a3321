package runtime

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/time/rate"
)

// Locating servers: the client side of RFC 3263 (R20). A server given as a
// domain name with port 0 is located through NAPTR (when its transport is
// TransportAuto), then SRV, then A/AAAA; with a port, through A/AAAA; an IP
// address is used as it is. Every address of every target is a server of
// the line, in the order RFC 3263 and RFC 2782 give (docs/requirements.md,
// R20).

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
// time replays exactly.
type InstantResolver interface {
	Resolver
	Instant()
}

// WithResolver sets the resolver that locates servers given by name; the
// default asks the servers of /etc/resolv.conf (see NewDNSResolver).
func WithResolver(r Resolver) Option { return func(a *Agent) { a.loc.res = r } }

// serverKey is what a configured server is located by.
type serverKey struct {
	addr      string // IP address or domain name, as configured
	port      int    // 0: look up SRV (RFC 3263 4.2)
	transport int    // TransportAuto: NAPTR chooses (RFC 3263 4.1)
	tlsName   string // the name a TLS server's certificate must carry
}

func keyOf(s ServerConfig) serverKey {
	name := s.TLSServerName
	if name == "" {
		name = s.Addr
	}
	return serverKey{addr: s.Addr, port: *s.Port, transport: *s.Transport, tlsName: name}
}

// String is the server as configured: "pbx.example.com (SRV, auto)".
func (k serverKey) String() string {
	how := "SRV"
	if k.port != 0 {
		how = strconv.Itoa(k.port)
	}
	tr := "auto"
	if k.transport != TransportAuto {
		tr = Endpoint{Transport: k.transport}.TransportName()
	}
	return fmt.Sprintf("%s (%s, %s)", k.addr, how, tr)
}

// target is one located address of a server.
type target struct {
	ep  Endpoint
	srv string // the SRV target and port it came from ("pbx1.example.com:5060"), "" for none
}

// Bounds of the time a lookup's answer is kept. The floor keeps a TTL of 0
// (dnsmasq's default for its own records) from asking on every use; a
// failed lookup is asked again after failedTTL.
const (
	minLocateTTL  = 5 * time.Second
	maxLocateTTL  = 24 * time.Hour
	failedTTL     = 5 * time.Second
	lookupTimeout = 10 * time.Second
)

// maxSRVTried bounds the SRV records of one answer whose addresses a
// lookup asks for (R20).
const maxSRVTried = 2 * maxServers

// located is what the locator knows of one server.
type located struct {
	targets []target  // the last good answer; kept (served stale) while a refresh fails
	err     error     // why the last lookup failed, nil after a good one
	expires time.Time // when to look up again
	done    bool      // a lookup has ended at least once
	running bool
	expired bool // the lookup running is the one the TTL's end started
	users   []*Line
	timer   Timer
}

// locator locates the servers of an agent's lines, one lookup per
// configured server shared by every line naming it (a fleet asks once).
// Lookups run on goroutines of their own, never under a line's or the
// network's lock; a line that needs a server still being looked up waits,
// and its budget keeps running (R3).
type locator struct {
	agent *Agent
	res   Resolver
	pace  *rate.Limiter // the questions to res

	mu    sync.Mutex
	names map[serverKey]*located
}

// Questions to one resolver are paced: 100 at once (a few lookups' worth),
// then 100 a second, so that many names looked up together (a fleet's, at
// start) come to the resolver as a stream, not a burst of thousands; a
// lookup still ends within its 10 s with a thousand questions queued
// before it. An InstantResolver (a zone in virtual time) is not paced.
const (
	questionsPerSecond = 100
	questionsAtOnce    = 100
)

// newPace is the pace of questions to a resolver.
func newPace() *rate.Limiter { return rate.NewLimiter(questionsPerSecond, questionsAtOnce) }

// lookup returns a lookup with the locator's resolver and its pace; lc.mu
// is held.
func (lc *locator) lookup() lookup {
	if lc.pace == nil {
		lc.pace = newPace()
	}
	return lookup{lc.agent, lc.res, lc.pace}
}

// instant says whether lookups run inline (an InstantResolver).
func (lc *locator) instant() bool {
	_, ok := lc.res.(InstantResolver)
	return ok
}

func (lc *locator) entry(k serverKey) *located {
	e := lc.names[k]
	if e == nil {
		e = &located{}
		lc.names[k] = e
	}
	return e
}

// literal returns the one target of a server given by IP address, and
// whether it is one.
func literal(k serverKey) (target, bool) {
	ip := net.ParseIP(k.addr)
	if ip == nil {
		return target{}, false
	}
	tr := k.transport
	if tr == TransportAuto {
		tr = TransportUDP // RFC 3263 4.1: a numeric address gets UDP
	}
	port := k.port
	if port == 0 {
		port = defaultPort(tr)
	}
	return target{ep: Endpoint{Host: ip.String(), Port: port, Transport: tr, ServerName: k.tlsName}}, true
}

func defaultPort(transport int) int {
	if transport == TransportTLS {
		return 5061
	}
	return 5060
}

// use subscribes l to k: l.located is called after every lookup of k, and
// k is looked up again whenever its answer expires while anyone uses it.
func (lc *locator) use(k serverKey, l *Line) {
	if _, ok := literal(k); ok {
		return
	}
	lc.mu.Lock()
	e := lc.entry(k)
	e.users = append(e.users, l)
	lc.mu.Unlock()
}

// release ends l's use of k.
func (lc *locator) release(k serverKey, l *Line) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	e := lc.names[k]
	if e == nil {
		return
	}
	e.users = slices.DeleteFunc(e.users, func(x *Line) bool { return x == l })
	if len(e.users) == 0 && e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
}

// get returns what k is located at: its targets (perhaps those of the
// last good answer while a refresh runs), or the error of its last lookup,
// or pending when nothing is known yet and a lookup runs: the caller then
// waits for located. A lookup starts when none has run or the answer has
// expired.
func (lc *locator) get(k serverKey) (ts []target, err error, pending bool) {
	if t, ok := literal(k); ok {
		return []target{t}, nil, false
	}
	lc.mu.Lock()
	e := lc.entry(k)
	if !e.running && (!e.done || !lc.agent.clock.Now().Before(e.expires)) {
		lc.start(k, e, false)
	}
	defer lc.mu.Unlock()
	switch {
	case len(e.targets) > 0:
		return e.targets, nil, false
	case e.running:
		return nil, nil, true
	}
	return nil, e.err, false
}

// expire makes k's answer stale, after every target of it failed: the
// next get looks it up again, and a running lookup is left to end.
func (lc *locator) expire(k serverKey) {
	if _, ok := literal(k); ok {
		return
	}
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if e := lc.names[k]; e != nil && e.done && !e.running {
		e.expires = lc.agent.clock.Now()
		lc.start(k, e, false) // its caller holds a line's lock
	}
}

// start begins a lookup of k; lc.mu is held. Inline (an InstantResolver)
// it ends before start returns, and notify says whether the users hear of
// it then: not when the caller holds a line's lock (get, expire); that
// line reads the answer itself, and the others at their next get.
func (lc *locator) start(k serverKey, e *located, notify bool) {
	e.running = true
	if lc.instant() {
		ts, ttl, err := lc.lookup().resolve(context.Background(), k)
		users, expired := lc.finish(k, e, ts, ttl, err)
		if notify {
			lc.mu.Unlock()
			for _, l := range users {
				l.located(k, expired)
			}
			lc.mu.Lock()
		}
		return
	}
	lk := lc.lookup()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
		ts, ttl, err := lk.resolve(ctx, k)
		cancel()
		lc.mu.Lock()
		users, expired := lc.finish(k, e, ts, ttl, err)
		lc.mu.Unlock()
		for _, l := range users {
			l.located(k, expired)
		}
	}()
}

// finish records the end of a lookup and arms the next one for when the
// answer expires; lc.mu is held. It returns the users to tell, and whether
// the lookup was the one the TTL's end started.
func (lc *locator) finish(k serverKey, e *located, ts []target, ttl time.Duration, err error) ([]*Line, bool) {
	expired := e.expired
	e.running, e.done, e.expired = false, true, false
	e.err = err
	if err == nil {
		e.targets = ts
		ttl = min(max(ttl, minLocateTTL), maxLocateTTL)
	} else {
		ttl = failedTTL
		lc.agent.log.Warn("server lookup failed", "server", k.String(), "err", err, "kept", len(e.targets))
	}
	e.expires = lc.agent.clock.Now().Add(ttl)
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	if len(e.users) > 0 {
		e.timer = lc.agent.clock.AfterFunc(ttl, func() { lc.refresh(k, e) })
	}
	return slices.Clone(e.users), expired
}

// refresh looks k up again when its answer expires, for as long as a line
// uses it (R20: records are re-resolved when their TTL ends).
func (lc *locator) refresh(k serverKey, e *located) {
	lc.mu.Lock()
	if len(e.users) == 0 || e.running || lc.names[k] != e {
		lc.mu.Unlock()
		return
	}
	e.expired = true
	lc.start(k, e, true)
	lc.mu.Unlock()
}

// SetResolver changes where the lines' server names are looked up (the
// settings' dns block changed): every answer kept is looked up again at
// its next use; the lines' registrations stay where they are.
func (a *Agent) SetResolver(r Resolver) {
	lc := &a.loc
	lc.mu.Lock()
	defer lc.mu.Unlock()
	lc.res, lc.pace = r, newPace()
	for _, e := range lc.names {
		e.expires = a.clock.Now()
	}
}

// lookup is one lookup: the resolver it asks and that resolver's pace, and
// the agent whose randomness orders SRV records.
type lookup struct {
	agent *Agent
	res   Resolver
	pace  *rate.Limiter
}

// service is one SRV name to ask and the transport its targets take.
type service struct {
	name      string
	transport int
}

var srvPrefix = map[int]string{TransportUDP: "_sip._udp.", TransportTCP: "_sip._tcp.", TransportTLS: "_sips._tcp."}

// naptrService maps the NAPTR services RFC 3263 defines to transports.
var naptrService = map[string]int{"SIP+D2U": TransportUDP, "SIP+D2T": TransportTCP, "SIPS+D2T": TransportTLS}

// resolve looks k up (RFC 3263 4.1, 4.2) and returns its targets in order
// and the shortest TTL of the records that gave them.
func (lk lookup) resolve(ctx context.Context, k serverKey) ([]target, time.Duration, error) {
	ttl := uint32(maxLocateTTL / time.Second)
	note := func(h *dns.RR_Header) { ttl = min(ttl, h.Ttl) }
	var ts []target
	add := func(ips []net.IP, port, transport int, srv string) {
		for _, ip := range ips {
			if ip.IsUnspecified() || ip.IsMulticast() {
				continue // no server can be there: a broken record, not a target
			}
			t := target{ep: Endpoint{Host: ip.String(), Port: port, Transport: transport, ServerName: k.tlsName}, srv: srv}
			if !slices.ContainsFunc(ts, func(x target) bool { return x.ep == t.ep }) {
				ts = append(ts, t)
			}
		}
	}
	seconds := func() time.Duration { return time.Duration(ttl) * time.Second }
	tr := k.transport
	if k.port != 0 {
		if tr == TransportAuto {
			tr = TransportUDP // RFC 3263 4.1: a name with a port gets UDP
		}
		ips, err := lk.addresses(ctx, k.addr, nil, note)
		if err != nil {
			return nil, 0, err
		}
		add(ips, k.port, tr, "")
		return ts, seconds(), nil
	}

	var services []service
	if tr == TransportAuto {
		var err error
		if services, err = lk.naptr(ctx, k.addr, note); err != nil {
			return nil, 0, err
		}
		if len(services) == 0 { // no NAPTR: every SRV service, UDP first (RFC 3263 4.1)
			for _, t := range []int{TransportUDP, TransportTCP, TransportTLS} {
				services = append(services, service{srvPrefix[t] + k.addr, t})
			}
		}
	} else {
		services = []service{{srvPrefix[tr] + k.addr, tr}}
	}
	// A line uses at most maxServers places: the targets past them are
	// never tried, and their addresses are not asked for. Nor are those
	// of more SRV records than twice that, whatever their addresses: an
	// answer of 500 records costs a handful of questions, not 1,000.
	found := false
	var errs []error
	tried := 0
	for _, s := range services {
		if len(ts) >= maxServers || tried >= maxSRVTried {
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
			if len(ts) >= maxServers || tried >= maxSRVTried {
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
	ts = ts[:min(len(ts), maxServers)]
	if !found {
		if len(errs) > 0 {
			return nil, 0, errors.Join(errs...)
		}
		// No SRV records: the name's own addresses on the default port
		// (RFC 3263 4.2).
		if tr == TransportAuto {
			tr = TransportUDP
		}
		ips, err := lk.addresses(ctx, k.addr, nil, note)
		if err != nil {
			return nil, 0, err
		}
		add(ips, defaultPort(tr), tr, "")
	}
	if len(ts) == 0 {
		if len(errs) > 0 {
			return nil, 0, errors.Join(errs...)
		}
		return nil, 0, fmt.Errorf("%s: every SRV target is \".\": no SIP service there", k.addr)
	}
	return ts, seconds(), nil
}

// naptr returns the SRV names the NAPTR records of name point to, for the
// transports the runtime has, by order and preference (RFC 3403, RFC 3263
// 4.1); none when name has no NAPTR records.
func (lk lookup) naptr(ctx context.Context, name string, note func(*dns.RR_Header)) ([]service, error) {
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
func (lk lookup) orderSRV(rs []*dns.SRV) []*dns.SRV {
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
			pick, run := lk.agent.jitter(sum), int64(0)
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
func (lk lookup) addresses(ctx context.Context, name string, extra []dns.RR, note func(*dns.RR_Header)) ([]net.IP, error) {
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
func (lk lookup) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	what := dns.TypeToString[qtype] + " " + strings.TrimSuffix(name, ".")
	if _, instant := lk.res.(InstantResolver); !instant {
		if err := lk.pace.Wait(ctx); err != nil {
			return nil, fmt.Errorf("DNS %s: no turn to ask within the lookup's time: %w", what, err)
		}
	}
	m, err := lk.res.Exchange(ctx, q)
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

// Target is one located address of a server (R20).
type Target struct {
	Endpoint
	SRV string // the SRV target and port it came from, "pbx1.example.com:5060"; "" for none
}

// Locate looks s up now, as the lines do (RFC 3263) but apart from the
// answers kept for them, and returns its targets in order and how long the
// answer may be kept: what a line configured with s would try, for
// diagnostics and tests. SRV weights draw on the agent's randomness.
func (a *Agent) Locate(ctx context.Context, s ServerConfig) ([]Target, time.Duration, error) {
	s = LineConfig{Servers: []ServerConfig{s}}.Defaults().Servers[0]
	k := keyOf(s)
	if t, ok := literal(k); ok {
		return []Target{{Endpoint: t.ep}}, maxLocateTTL, nil
	}
	a.loc.mu.Lock()
	lk := a.loc.lookup()
	a.loc.mu.Unlock()
	ts, ttl, err := lk.resolve(ctx, k)
	var out []Target
	for _, t := range ts {
		out = append(out, Target{Endpoint: t.ep, SRV: t.srv})
	}
	return out, ttl, err
}
