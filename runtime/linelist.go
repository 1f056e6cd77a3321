package runtime

import (
	"fmt"
	"slices"

	"github.com/sipfailover/sipfailover/fsm"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
)

// maxServers is the longest server list a line has: the line model's
// bound on server_count. The located targets of the first servers take the
// places the later ones leave, each of which keeps one.
const maxServers = 8

// slot is one place of a line's server list (R20).
type slot struct {
	target
	cfg     int   // the configured server it comes from (Line.hops index)
	pending bool  // its name is being looked up; the place stands for every target it will have
	err     error // its name could not be located
}

// list builds the server list from what the locator knows now: every
// configured server's targets, in priority order, each address once (a
// target of two names is tried where it comes first); l.mu is held.
func (l *Line) list() []slot {
	var out []slot
	for i, k := range l.keys {
		ts, err, pending := l.agent.loc.get(k)
		if len(ts) == 0 {
			out = append(out, slot{cfg: i, pending: pending, err: err})
			continue
		}
		room := maxServers - len(out) - (len(l.keys) - i - 1)
		out = append(out, fresh(out, ts, i, room)...)
	}
	return out
}

// fresh returns the places for targets ts of configured server cfg that
// list does not hold yet, at most room of them.
func fresh(list []slot, ts []target, cfg, room int) []slot {
	var out []slot
	for _, t := range ts {
		if len(out) == room {
			break
		}
		if !slices.ContainsFunc(list, func(s slot) bool { return addrOf(s.ep) == addrOf(t.ep) }) {
			out = append(out, slot{target: t, cfg: cfg})
		}
	}
	return out
}

// expand replaces place i of list, when its name was not located yet, by
// what the locator knows now: the targets (as many as the list has room
// for), or the lookup's error. The places before i are untouched, so the
// server the line is at keeps its number. The list given is not changed.
func (l *Line) expand(list []slot, i int) []slot {
	s := list[i]
	if !s.pending && s.err == nil {
		return list
	}
	ts, err, pending := l.agent.loc.get(l.keys[s.cfg])
	if len(ts) == 0 {
		list = slices.Clone(list)
		list[i].pending, list[i].err = pending, err
		return list
	}
	got := fresh(list, ts, s.cfg, maxServers-(len(list)-1))
	if len(got) == 0 {
		list = slices.Clone(list)
		list[i].pending, list[i].err = false, fmt.Errorf("every target of %s is a server the line has already", l.keys[s.cfg])
		return list
	}
	return slices.Concat(list[:i], got, list[i+1:])
}

// setList makes list the line's, and tells the model how long it is and
// whether every server sees one Contact (all UDP; a name not located yet
// counts with its configured transport, auto as RFC 3263's UDP).
func (l *Line) setList(list []slot) {
	l.targets = list
	p := l.m.Params()
	p.ServerCount = len(list)
	p.ContactShared = !slices.ContainsFunc(list, func(s slot) bool {
		tr := s.ep.Transport
		if s.pending || s.err != nil {
			tr = *l.hops[s.cfg].Transport
		}
		return tr != settings.TransportUDP && tr != settings.TransportAuto
	})
	l.m.SetParams(p)
}

// Locate takes the line's server list anew at the start of a round (R20).
func (a *lineActions) Locate() {
	l := (*Line)(a)
	l.setList(l.list())
}

// locateServer returns where server i is. While its name is being looked
// up it returns false, and the REGISTER waits: located sends it. A name
// that could not be located posts lookup.failed with the resolver's reason.
func (l *Line) locateServer(i int) (transport.Endpoint, bool) {
	l.setList(l.expand(l.targets, i))
	s := l.targets[i]
	l.waiting = s.pending
	switch {
	case s.pending:
		l.finish(l.main)
		return transport.Endpoint{}, false
	case s.err != nil:
		l.finish(l.main)
		l.post(fsm.LineEventLookupFailed, s.err.Error())
		return transport.Endpoint{}, false
	}
	return s.ep, true
}

// server returns server i's endpoint; the zero transport.Endpoint while it is not
// located.
func (l *Line) server(i int) transport.Endpoint {
	if i < 0 || i >= len(l.targets) {
		return transport.Endpoint{}
	}
	return l.targets[i].ep
}

// describe says what server i is, for the status (R14, R20): the server
// as configured, the SRV target, the address, and all of it in a few
// words: "example.test via p1.example.test:5060 at UDP 10.0.0.5:5060".
func (l *Line) describe(i int) (name, srv, addr, where string) {
	if i < 0 || i >= len(l.targets) {
		return "", "", "", ""
	}
	s := l.targets[i]
	k := l.keys[s.cfg]
	name = k.String()
	switch {
	case s.pending:
		return name, "", "", k.Addr + " (being looked up)"
	case s.err != nil:
		return name, "", "", k.Addr + " (not located)"
	}
	addr = s.ep.String()
	switch {
	case s.srv != "":
		where = k.Addr + " via " + s.srv + " at " + addr
	case k.Addr != s.ep.Host:
		where = k.Addr + " at " + addr
	default:
		where = addr
	}
	return name, s.srv, addr, where
}

// located hears that a lookup of k ended (expired: the one the end of its
// TTL started); it runs on no lock. A REGISTER or a probe waiting for k's
// answer goes now. When the primary's records were looked up again at the
// end of their TTL, the model hears dns.refreshed: failback mode dns_ttl
// probes then (R18).
func (l *Line) located(k serverKey, expired bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cc != nil {
		l.cc.located(k)
		l.drain()
		return
	}
	v, st := l.m.Vars(), l.m.State()
	switch {
	case l.waiting && v.Server < len(l.targets) && l.keys[l.targets[v.Server].cfg] == k &&
		(st.HasTag(fsm.LineTagTrying) || st == fsm.LineStateUnregistering):
		expires := -1
		if st == fsm.LineStateUnregistering {
			expires = 0
		}
		main := l.main
		l.sendRegister(v.Server, expires, nil)
		l.budgetsFromSend(main, l.probe)
	case l.probeWaiting && st == fsm.LineStateProbing && l.keys[l.probeTargets[0].cfg] == k:
		probe := l.probe
		l.sendProbe(nil)
		l.budgetsFromSend(l.main, probe)
	case expired && k == l.keys[0] && st == fsm.LineStateBackupRegistered:
		l.post(fsm.LineEventDnsRefreshed, "the primary's DNS records were looked up again: "+k.String())
	}
	l.drain()
}

// sharesRegistrations says whether server i takes the line's requests
// with no registration of its own: its register_on_enable is 0 (R23).
func (l *Line) sharesRegistrations(i int) bool {
	return i >= 0 && i < len(l.targets) && *l.hops[l.targets[i].cfg].RegisterOnEnable == 0
}

// lastOfName returns the name server i was located from, and whether it is
// the last target of that name in the list: when the line moves on from
// it, every target of the name has failed this round.
func (l *Line) lastOfName(i int) (serverKey, bool) {
	if i < 0 || i >= len(l.targets) {
		return serverKey{}, false
	}
	return l.keys[l.targets[i].cfg], i+1 == len(l.targets) || l.targets[i+1].cfg != l.targets[i].cfg
}

// anyServer returns the line's current server if it is located, else the
// first located one: where the line's address is taken from before a
// call's INVITE goes anywhere.
func (l *Line) anyServer() transport.Endpoint {
	if _, server := l.view(); l.server(server) != (transport.Endpoint{}) {
		return l.server(server)
	}
	if e := l.server(l.m.Vars().Server); e != (transport.Endpoint{}) {
		return e
	}
	for _, s := range l.targets {
		if s.ep != (transport.Endpoint{}) {
			return s.ep
		}
	}
	return transport.Endpoint{Host: "127.0.0.1", Port: 5060}
}

// domainOf is the domain of the line's address of record when the
// settings give none: the server's name as configured (a domain located
// through DNS, not the address it was located at), else its address; the
// registrar's behind outbound proxies (R22).
func (l *Line) domainOf(dst transport.Endpoint) string {
	if l.cfg.Proxied() {
		return uriHost(l.cfg.Servers[0].Addr)
	}
	for _, s := range slices.Concat(l.targets, l.probeTargets) {
		if s.ep == dst {
			return uriHost(l.keys[s.cfg].Addr)
		}
	}
	return uriHost(dst.Host)
}

// serverAddr is a server as the line keeps what it knows of it: its
// address, port and transport, whatever name it was reached by.
type serverAddr struct {
	host            string
	port, transport int
}

// addrOf is the serverAddr of e.
func addrOf(e transport.Endpoint) serverAddr { return serverAddr{e.Host, e.Port, e.Transport} }
