package capture

import (
	"net"
	"strings"
)

// Behind outbound proxies (R22) the servers on the wire are the proxies,
// and a REGISTER's Request-URI names the registrar behind them it is for:
// what a proxy answers for that registrar, and where the phone goes next.

// registrarCodes are a proxy's answers to a REGISTER for the registrar
// behind it (R22): it did not answer the proxy (408), answered 503 (which a
// proxy answers 500 for, RFC 3261 16.7), or the next hop failed (502, 504).
var registrarCodes = []int{408, 500, 502, 504}

// registrarOf is, behind outbound proxies, the registrar a REGISTER names
// (R22): the entry of Registrars that is its host, or its host and port;
// its host when none is; "" without proxies.
func (s Settings) registrarOf(t *Txn) string {
	if len(s.Registrars) == 0 {
		return ""
	}
	host, port := uriHostPort(t.URI)
	for _, r := range s.Registrars {
		if r == host || port != "" && r == net.JoinHostPort(host, port) {
			return r
		}
	}
	return host
}

// otherRegistrar reports whether, behind outbound proxies, REGISTER next
// names another registrar than t went to: t's own when t is a REGISTER,
// else that of the line's newest binding on t's proxy (R22).
func (a *Analysis) otherRegistrar(l *LineTrace, t, next *Txn) bool {
	if len(a.Registrars) == 0 || next.Method != "REGISTER" {
		return false
	}
	was := a.registrarOf(t)
	if t.Method != "REGISTER" {
		var newest *Binding
		for _, b := range l.Bindings {
			if b.Server == t.Server && !b.From.After(t.start()) && (newest == nil || b.From.After(newest.From)) {
				newest = b
			}
		}
		if newest == nil {
			return false
		}
		was = newest.registrar
	}
	return a.registrarOf(next) != was
}

// offPrimaryRegistrar reports whether, behind outbound proxies, REGISTER t
// goes through the primary proxy to the first registrar while the line is
// registered through it on another: a failback probe (R10, R22).
func (a *Analysis) offPrimaryRegistrar(l *LineTrace, t *Txn) bool {
	if len(a.Registrars) == 0 || a.registrarOf(t) != a.Registrars[0] {
		return false
	}
	b := l.newest(t.start())
	return b != nil && b.live(t.start()) && b.Server == 0 && b.registrar != a.Registrars[0]
}

// uriHostPort are the host and port of a SIP URI as a Request-URI writes
// it: no scheme, user or parameters; an IPv6 address without its
// brackets; "" for a port it does not give.
func uriHostPort(uri string) (host, port string) {
	_, rest, ok := strings.Cut(uri, ":")
	if !ok {
		return "", ""
	}
	rest, _, _ = strings.Cut(rest, ";")
	rest, _, _ = strings.Cut(rest, "?")
	if _, hp, ok := strings.Cut(rest, "@"); ok {
		rest = hp
	}
	if strings.HasPrefix(rest, "[") {
		host, rest, _ = strings.Cut(rest[1:], "]")
		_, port, _ = strings.Cut(rest, ":")
		return host, port
	}
	host, port, _ = strings.Cut(rest, ":")
	return host, port
}
