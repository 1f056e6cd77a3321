package runtime

import (
	"context"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/sipfailover/sipfailover/runtime/locate"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
)

// Locating servers (R20): runtime/locate looks names up as RFC 3263 says;
// the locator here keeps each answer for its TTL, shares it among the lines
// that name the server, and tells them when it changes.

// Resolver answers the locator's DNS queries (locate.Resolver).
type Resolver = locate.Resolver

// InstantResolver is a Resolver that answers from memory without blocking
// (locate.InstantResolver): lookups then run inline, in virtual time.
type InstantResolver = locate.InstantResolver

// DNSResolver asks DNS servers (locate.DNSResolver).
type DNSResolver = locate.DNSResolver

// NewDNSResolver returns a resolver that asks servers (host:port, IP
// addresses); with none, those of /etc/resolv.conf and the host's resolver
// for addresses (locate.NewDNSResolver).
func NewDNSResolver(servers []string) *DNSResolver { return locate.NewDNSResolver(servers) }

// ParseDNSServer checks one DNS server setting (locate.ParseDNSServer).
func ParseDNSServer(s string) (string, error) { return locate.ParseDNSServer(s) }

// WithResolver sets the resolver that locates servers given by name; the
// default asks the servers of /etc/resolv.conf (see NewDNSResolver).
func WithResolver(r Resolver) Option { return func(a *Agent) { a.loc.res = r } }

// serverKey is what a configured server is located by.
type serverKey = locate.Key

func keyOf(s settings.ServerConfig) serverKey {
	name := s.TLSServerName
	if name == "" {
		name = s.Addr
	}
	return serverKey{Addr: s.Addr, Port: *s.Port, Transport: *s.Transport, TLSName: name}
}

// target is one located address of a server.
type target struct {
	ep  transport.Endpoint
	srv string // the SRV target and port it came from ("pbx1.example.com:5060"), "" for none
}

// targetOf is a located target as the network reaches it.
func targetOf(t locate.Target) target {
	return target{ep: transport.Endpoint{Host: t.Host, Port: t.Port, Transport: t.Transport, ServerName: t.ServerName}, srv: t.SRV}
}

// targetsOf is targetOf of each of ts.
func targetsOf(ts []locate.Target) []target {
	var out []target
	for _, t := range ts {
		out = append(out, targetOf(t))
	}
	return out
}

// literal returns the one target of a server given by IP address, and
// whether it is one.
func literal(k serverKey) (target, bool) {
	t, ok := locate.Literal(k)
	return targetOf(t), ok
}

// lookupTimeout bounds one lookup in the background.
const lookupTimeout = 10 * time.Second

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

// lookup returns a lookup with the locator's resolver and its pace, and
// the agent's randomness; lc.mu is held.
func (lc *locator) lookup() locate.Lookup {
	if lc.pace == nil {
		lc.pace = locate.NewPace()
	}
	return locate.Lookup{Resolver: lc.res, Pace: lc.pace, Draw: lc.agent.jitter}
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
		ts, ttl, err := lc.lookup().Resolve(context.Background(), k)
		users, expired := lc.finish(k, e, targetsOf(ts), ttl, err)
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
		ts, ttl, err := lk.Resolve(ctx, k)
		cancel()
		lc.mu.Lock()
		users, expired := lc.finish(k, e, targetsOf(ts), ttl, err)
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
		ttl = min(max(ttl, locate.MinTTL), locate.MaxTTL)
	} else {
		ttl = locate.FailedTTL
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
	lc.res, lc.pace = r, locate.NewPace()
	for _, e := range lc.names {
		e.expires = a.clock.Now()
	}
}

// Target is one located address of a server (R20).
type Target struct {
	transport.Endpoint
	SRV string // the SRV target and port it came from, "pbx1.example.com:5060"; "" for none
}

// Locate looks s up now, as the lines do (RFC 3263) but apart from the
// answers kept for them, and returns its targets in order and how long the
// answer may be kept: what a line configured with s would try, for
// diagnostics and tests. SRV weights draw on the agent's randomness.
func (a *Agent) Locate(ctx context.Context, s settings.ServerConfig) ([]Target, time.Duration, error) {
	s = settings.LineConfig{Servers: []settings.ServerConfig{s}}.Defaults().Servers[0]
	k := keyOf(s)
	if t, ok := literal(k); ok {
		return []Target{{Endpoint: t.ep}}, locate.MaxTTL, nil
	}
	a.loc.mu.Lock()
	lk := a.loc.lookup()
	a.loc.mu.Unlock()
	ts, ttl, err := lk.Resolve(ctx, k)
	var out []Target
	for _, t := range targetsOf(ts) {
		out = append(out, Target{Endpoint: t.ep, SRV: t.srv})
	}
	return out, ttl, err
}
