package settings

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/sipfailover/sipfailover/runtime/locate"
)

// Problem is one bad setting.
type Problem struct {
	Line  string // "line 1 (lobby)"; "web" for the pages' settings
	Index int    // the line's place in the list, from 0; -1 for web
	Field string // "servers[0].port"
	Msg   string
}

func (p Problem) String() string { return fmt.Sprintf("%s: %s: %s", p.Line, p.Field, p.Msg) }

// ValidationError lists every bad setting of a config.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid settings:")
	for _, p := range e.Problems {
		b.WriteString("\n  " + p.String())
	}
	return b.String()
}

// ErrNoLines is returned for a config without lines.
var ErrNoLines = errors.New("no lines configured")

// Validate checks every setting of every line (R2) and reports all problems
// in one *ValidationError. It changes nothing.
func (c Config) Validate() error {
	if len(c.Lines) == 0 {
		return ErrNoLines
	}
	var probs []Problem
	names := map[string]int{}
	for i, raw := range c.Lines {
		l := raw.Defaults()
		where := fmt.Sprintf("line %d", i+1)
		if l.Name != "" {
			where += " (" + l.Name + ")"
			if prev, dup := names[l.Name]; dup {
				probs = append(probs, Problem{where, i, "name", fmt.Sprintf("also the name of line %d", prev)})
			}
			names[l.Name] = i + 1
		}
		bad := func(field, format string, args ...any) {
			probs = append(probs, Problem{where, i, field, fmt.Sprintf(format, args...)})
		}
		if l.User == "" {
			bad("user", "empty: the line needs a user name")
		}
		if strings.ContainsAny(l.User+l.AuthUser+l.Domain, " \t\r\n<>\"@") {
			bad("user", "user, auth_user and domain may not hold spaces, quotes, <, > or @")
		}
		if strings.ContainsAny(l.DisplayName, "\r\n\"") {
			bad("display_name", "may not hold quotes or line breaks")
		}
		switch n := len(l.Servers); {
		case l.Proxied() && (n < 1 || n > 4):
			bad("servers", "%d servers; behind outbound_proxies a line has 1 to 4: the registrars the proxies lead to, the primary first (R22)", n)
		case l.Proxied() && n > 1 && l.Domain == "":
			bad("domain", "empty: behind outbound_proxies with %d registrars the address of record needs a domain of its own, the same whichever registrar the line is on (R22)", n)
		case l.Proxied() && n > 1 && l.RegistrationMode == "concurrent":
			bad("servers", "%d servers: RFC 5626 flows register through every proxy at once to one registrar; give one, or use registration_mode successive (R22, R24)", n)
		case l.Proxied():
		case n == 1 && net.ParseIP(l.Servers[0].Addr) == nil && *l.Servers[0].Port == 0:
			// One domain name looked up in DNS SRV: its targets are the
			// line's servers, primary and backups (R20).
		case n < 2 || n > 4:
			bad("servers", "%d servers; a line has 2 to 4 (primary first), or one domain name with port 0 whose DNS SRV targets are its servers", n)
		}
		for j, s := range l.Servers {
			checkServer(bad, fmt.Sprintf("servers[%d].", j), s)
			if *s.TTL < MinTTL || *s.TTL > MaxTTL {
				bad(fmt.Sprintf("servers[%d].ttl", j), "%d is outside %d-%d (seconds)", *s.TTL, MinTTL, MaxTTL)
			}
		}
		if n := len(l.OutboundProxies); n > 4 {
			bad("outbound_proxies", "%d proxies; a line has 1 to 4 (the first is the primary), or none", n)
		}
		for j, s := range l.OutboundProxies {
			f := fmt.Sprintf("outbound_proxies[%d].", j)
			checkServer(bad, f, s)
			if s.TTL != nil {
				bad(f+"ttl", "a proxy holds no registration: the registrar's ttl (servers[0].ttl) applies")
			}
		}
		if v := *l.OnlySignalWithRegistered; v != 0 && v != 1 {
			bad("only_signal_with_registered", "%d is not 0 or 1", v)
		}
		if l.RegistrationMode == "concurrent" {
			for j, s := range l.Hops() {
				if *s.RegisterOnEnable == 0 {
					bad(fmt.Sprintf("%s[%d].register_on_enable", map[bool]string{true: "outbound_proxies", false: "servers"}[l.Proxied()], j),
						"0: a concurrent line registers on every server at once, and sends there with no REGISTER first already (R17)")
				}
			}
		}
		switch {
		case l.Outbound && !l.Proxied():
			bad("outbound", "true: RFC 5626 flows run through outbound proxies; give outbound_proxies")
		case l.Outbound && l.RegistrationMode != "concurrent":
			bad("outbound", "true: outbound keeps a registration through every proxy at once; set registration_mode: concurrent")
		}
		if l.Proxied() {
			for j, s := range l.Servers {
				if *s.RegisterOnEnable == 0 {
					bad(fmt.Sprintf("servers[%d].register_on_enable", j), "0: behind outbound_proxies the line sends to the proxies, and theirs applies")
				}
			}
			if l.RegistrationMode == "concurrent" && !l.Outbound {
				bad("registration_mode", "concurrent: registering through every proxy at once needs RFC 5626 outbound flows; set outbound: true, or use successive")
			}
			if l.DeregisterBackupAfterFailback == 1 && len(l.Servers) == 1 {
				bad("deregister_backup_after_failback", "1: the proxies lead to one registrar, so the binding made through the backup proxy is the one failback just renewed through the primary; removing it would leave the line unregistered")
			}
		}
		if v := *l.EnableFailback; v != 0 && v != 1 {
			bad("enable_failback", "%d is not 0 or 1", v)
		}
		if l.RetryMode != "count" && l.RetryMode != "time" {
			bad("retry_mode", "%q is not count or time", l.RetryMode)
		}
		switch {
		case !slices.Contains(FailbackModes, l.FailbackMode):
			bad("failback_mode", "%q is not one of %s", l.FailbackMode, strings.Join(FailbackModes, ", "))
		case l.FailbackMode == "dns_ttl" && len(l.Hops()) > 0 && net.ParseIP(l.Hops()[0].Addr) != nil:
			primary := "servers[0]"
			if l.Proxied() {
				primary = "outbound_proxies[0]"
			}
			bad("failback_mode", "dns_ttl tries the primary when its DNS records expire; %s.addr %s is an address, which has none", primary, l.Hops()[0].Addr)
		}
		if l.FailbackWhen != "idle" && l.FailbackWhen != "always" {
			bad("failback_when", "%q is not idle or always", l.FailbackWhen)
		}
		switch {
		case l.RegistrationMode != "successive" && l.RegistrationMode != "concurrent":
			bad("registration_mode", "%q is not successive or concurrent", l.RegistrationMode)
		case l.RegistrationMode == "concurrent" && l.FailbackMode != "duration":
			bad("failback_mode", "%s: a concurrent line keeps a registration on the primary and moves back as soon as it is up; failback_mode applies to successive mode only", l.FailbackMode)
		}
		if len(l.Servers) > 0 {
			// The bounds the models give the params these settings become.
			for _, p := range modelProblems(l) {
				bad(p[0], "%s", p[1])
			}
		}
		if l.RetryMode == "time" && l.RetryTime < l.T1 {
			bad("retry_time", "%v is below t1 (%v), the round-trip estimate: no answer could come in time", l.RetryTime, time.Duration(l.T1))
		}
		if l.T2 < l.T1 {
			bad("t2", "%v is below t1 (%v)", time.Duration(l.T2), time.Duration(l.T1))
		}
		if l.BackoffMax < l.BackoffBase {
			bad("backoff_max", "%v is below backoff_base (%v)", l.BackoffMax, l.BackoffBase)
		}
		if l.KeepaliveInterval < 0 {
			bad("keepalive_interval", "%v: must be 0 (off) or positive", l.KeepaliveInterval)
		}
		if l.NATKeepaliveMode != "auto" && l.NATKeepaliveMode != "crlf" {
			bad("nat_keepalive_mode", "%q is not auto (STUN over UDP) or crlf", l.NATKeepaliveMode)
		}
		if v := *l.MaxIncomingCalls; v < 0 || v > 1000 {
			bad("max_incoming_calls", "%d is outside 0-1000", v)
		}
		if v := l.DeregisterBackupAfterFailback; v != 0 && v != 1 {
			bad("deregister_backup_after_failback", "%d is not 0 or 1", v)
		}
		if l.UnavailableCodes != nil && len(l.UnavailableCodes) == 0 {
			bad("unavailable_codes", "empty: no answer would make a server unavailable; leave the field out for the default 500, 503")
		}
		for _, code := range l.UnavailableCodes {
			if code < 300 || code > 699 || code == 401 || code == 407 {
				bad("unavailable_codes", "%d is not a final failure code (300-699, not 401 or 407)", code)
			}
		}
	}
	if c.Pacing != nil {
		if err := c.Pacing.Validate(); err != nil {
			field, msg, _ := strings.Cut(err.Error(), " ")
			probs = append(probs, Problem{"settings", -1, field, msg})
		}
	}
	if c.MaxCalls < 0 || c.MaxCalls > 100000 {
		probs = append(probs, Problem{"settings", -1, "max_calls", fmt.Sprintf("%d is outside 1-100000", c.MaxCalls)})
	}
	if c.DNS != nil {
		for i, s := range c.DNS.Servers {
			if _, err := locate.ParseDNSServer(s); err != nil {
				probs = append(probs, Problem{"dns", -1, fmt.Sprintf("servers[%d]", i), err.Error()})
			}
		}
	}
	if w := c.Web; w != nil {
		bad := func(field, format string, args ...any) {
			probs = append(probs, Problem{"web", -1, field, fmt.Sprintf(format, args...)})
		}
		host, port, err := net.SplitHostPort(w.Listen)
		switch {
		case w.Listen != "" && (err != nil || port == ""):
			bad("listen", "%q is not host:port", w.Listen)
		case w.Listen != "" && !Loopback(host) && !w.AllowRemote:
			bad("listen", "%s is not a loopback address: anyone on the network could reach the pages; set allow_remote (with tls_cert and tls_key) to mean it", w.Listen)
		}
		if w.AllowRemote && (w.TLSCert == "" || w.TLSKey == "") {
			bad("tls_cert", "allow_remote serves the pages over TLS only: tls_cert and tls_key are required")
		}
		if (w.TLSCert == "") != (w.TLSKey == "") {
			bad("tls_key", "tls_cert and tls_key go together")
		}
		if w.MetricsToken != "" && len(w.MetricsToken) < 16 {
			bad("metrics_token", "%d characters; at least 16, or anyone may guess it", len(w.MetricsToken))
		}
		if !strings.HasPrefix(w.PasswordHash, "$2a$") && !strings.HasPrefix(w.PasswordHash, "$2b$") && !strings.HasPrefix(w.PasswordHash, "$2y$") {
			bad("password_hash", "not a bcrypt hash; make one with sipfailover hash-password")
		}
	}
	if len(probs) > 0 {
		return &ValidationError{Problems: probs}
	}
	return nil
}

// checkServer reports what is wrong with server s, whose fields are named
// with prefix f ("servers[1].").
func checkServer(bad func(field, format string, args ...any), f string, s ServerConfig) {
	switch {
	case s.Addr == "":
		bad(f+"addr", "empty")
	case net.ParseIP(s.Addr) == nil && !validHostname(s.Addr):
		bad(f+"addr", "%q is neither an IP address nor a domain name", s.Addr)
	}
	if *s.Port < 0 || *s.Port > 65535 {
		bad(f+"port", "%d is outside 0-65535 (0: look the name up in DNS SRV)", *s.Port)
	}
	switch t := *s.Transport; {
	case t != TransportUDP && t != TransportTCP && t != TransportTLS && t != TransportAuto:
		bad(f+"transport", "%d is not 0 (UDP), 1 (TCP), 3 (TLS) or 2 (what the name's DNS NAPTR records say)", t)
	case t == TransportAuto && *s.Port != 0:
		bad(f+"transport", "2 (DNS NAPTR) looks up the transport and the port: the port must be 0 or left out")
	case t == TransportAuto && net.ParseIP(s.Addr) != nil:
		bad(f+"transport", "2 (DNS NAPTR) needs a domain name; %s is an address", s.Addr)
	}
	if v := *s.RegisterOnEnable; v != 0 && v != 1 {
		bad(f+"register_on_enable", "%d is not 0 (shares the others' registrations) or 1 (registers before a request)", v)
	}
}

// Loopback says whether host (a name or an address) names only this
// machine.
func Loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validHostname(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// Warnings lists settings that are valid but likely a mistake: a line
// without a password registers only on servers that do not authenticate.
func (c Config) Warnings() []string {
	var out []string
	for i, l := range c.Lines {
		if l.Password == "" {
			out = append(out, fmt.Sprintf("line %d%s: no password: the line can only register where no credentials are asked", i+1, nameSuffix(l.Name)))
		}
	}
	return out
}

func nameSuffix(name string) string {
	if name == "" {
		return ""
	}
	return " (" + name + ")"
}
