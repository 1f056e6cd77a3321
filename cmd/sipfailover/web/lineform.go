package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/settings"
)

// The Line page's form: the fields it shows of one line, and how a Submit
// becomes settings (R2, R15).

// transports are the choices of a transport field, as the seed numbers them.
var transports = map[string]string{"0": "UDP", "1": "TCP", "3": "TLS", "2": "DNS NAPTR chooses"}

// registerOnEnable are the choices of a server's or proxy's
// register_on_enable (R23).
var registerOnEnable = map[string]string{"1": "1 (register before a request)", "0": "0 (shares the others' registrations)"}

// choices are the options of the other fields that are choices (R18).
var choices = map[string]map[string]string{
	"failback_mode": {"duration": "duration (every Failback Interval)", "registration": "registration (at each refresh)",
		"new_requests": "new_requests (with each new call or message)", "dns_ttl": "dns_ttl (when the primary's DNS records expire)"},
	"failback_when":               {"idle": "idle (never during a call)", "always": "always"},
	"registration_mode":           {"successive": "successive (one server at a time)", "concurrent": "concurrent (every server at once)"},
	"retry_mode":                  {"count": "count (Signal Retry Counts transmissions)", "time": "time (Retry Time)"},
	"nat_keepalive_mode":          {"auto": "auto (STUN over UDP, CRLF ping over TCP and TLS)", "crlf": "crlf (a bare CRLF over UDP)"},
	"only_signal_with_registered": {"1": "1 (new requests only where registered)", "0": "0 (also where registering)"},
	"outbound":                    {"off": "off", "on": "on (RFC 5626 flows through the proxies; concurrent mode)"},
}

// formField is what the field templates show of one input.
type formField struct {
	Name, Label, Value, Err string
	Options                 map[string]string
}

// lineForm is the Line / SIP page of one line: the fields as typed, and
// the messages beside them.
type lineForm struct {
	CSRF    string
	Lines   []lineChoice
	Line    int // from 1
	Values  map[string]string
	Errors  map[string]string
	General []string // problems that belong to no field of the form
	Saved   bool
	Extra   int // servers past the second, kept as they are
	// ExtraProxies is the outbound proxies past the second, kept as they
	// are (R22).
	ExtraProxies int
	State        string // the line's registration, in words: "Registered on server 2 (UDP 10.0.0.2:5060)"
}

// sipN is the seed's label prefix for line n: SIP1 for line 1.
func (f lineForm) SIPN() string { return fmt.Sprintf("SIP%d", f.Line) }

type lineChoice struct {
	Number int
	Label  string
}

// formFields are the form's inputs, each with the setting it edits.
var formFields = []struct{ name, setting string }{
	{"user", "user"}, {"auth_user", "auth_user"}, {"password", "password"}, {"display_name", "display_name"}, {"domain", "domain"},
	{"server1_addr", "servers[0].addr"}, {"server1_port", "servers[0].port"},
	{"server1_ttl", "servers[0].ttl"}, {"server1_transport", "servers[0].transport"},
	{"server2_addr", "servers[1].addr"}, {"server2_port", "servers[1].port"},
	{"server2_ttl", "servers[1].ttl"}, {"server2_transport", "servers[1].transport"},
	{"server1_register_on_enable", "servers[0].register_on_enable"}, {"server2_register_on_enable", "servers[1].register_on_enable"},
	{"proxy1_register_on_enable", "outbound_proxies[0].register_on_enable"}, {"proxy2_register_on_enable", "outbound_proxies[1].register_on_enable"},
	{"only_signal_with_registered", "only_signal_with_registered"}, {"outbound", "outbound"},
	{"proxy1_addr", "outbound_proxies[0].addr"}, {"proxy1_port", "outbound_proxies[0].port"}, {"proxy1_transport", "outbound_proxies[0].transport"},
	{"proxy2_addr", "outbound_proxies[1].addr"}, {"proxy2_port", "outbound_proxies[1].port"}, {"proxy2_transport", "outbound_proxies[1].transport"},
	{"enable_failback", "enable_failback"}, {"failback_interval", "failback_interval"},
	{"signal_retry_counts", "signal_retry_counts"}, {"invite_retry_counts", "invite_retry_counts"},
	{"failback_mode", "failback_mode"}, {"failback_when", "failback_when"}, {"registration_mode", "registration_mode"},
	{"t1", "t1"}, {"t2", "t2"}, {"retry_mode", "retry_mode"}, {"retry_time", "retry_time"},
	{"keepalive_interval", "keepalive_interval"}, {"nat_keepalive_interval", "nat_keepalive_interval"},
	{"nat_keepalive_mode", "nat_keepalive_mode"}, {"unavailable_codes", "unavailable_codes"},
}

// lineState says how line n (from 1) stands, in words (R14).
func (s *Server) lineState(n int) string {
	if s.Lines == nil {
		return ""
	}
	if st := s.Lines(); n-1 < len(st) {
		return StateWords(st[n-1])
	}
	return ""
}

// StateWords says in a phone user's words where a line stands; servers
// are numbered from 1, the primary being 1 (R14). Behind outbound proxies
// the line moves between proxies, and the words say so, and name the
// registrar (R22).
func StateWords(st runtime.Status) string {
	n := st.Server
	hop, Hop, on, at := "server", "Server", "on", ""
	if st.ServerAddr != "" {
		at = " (" + st.ServerAddr + ")"
	}
	if st.Registrar != "" {
		hop, Hop, on = "outbound proxy", "Outbound proxy", "through"
		if st.RegistrarNumber <= 1 {
			at += " to the registrar " + st.Registrar
		} else {
			// A backup registrar behind the proxies (R22): which of the
			// two failed, the proxy or the registrar, is the model's to
			// say, not these words.
			at += fmt.Sprintf(" to registrar %d, %s", st.RegistrarNumber, st.Registrar)
			switch st.State {
			case "retrying":
				return fmt.Sprintf("Trying %s %d%s", hop, n, at)
			case "backup_registered":
				return fmt.Sprintf("Registered on a backup, %s %d%s", hop, n, at)
			}
		}
	}
	switch st.State {
	case "idle":
		return "Not registered"
	case "registering":
		return fmt.Sprintf("Registering %s %s %d%s", on, hop, n, at)
	case "retrying":
		return fmt.Sprintf("%s %d did not answer; trying %s %d%s", Hop, n-1, hop, n, at)
	case "primary_registered":
		return fmt.Sprintf("Registered %s the primary, %s 1%s", on, hop, at)
	case "backup_registered":
		return fmt.Sprintf("Registered %s a backup, %s %d%s", on, hop, n, at)
	case "probing":
		return fmt.Sprintf("Registered %s %s %d%s; asking the primary whether it is back", on, hop, n, at)
	case "all_failed":
		return "No server could be used; trying again after a pause"
	case "failed":
		return "Refused by the server; trying again after a pause"
	case "unregistering":
		return "Unregistering"
	}
	return st.State
}

func (s *Server) choices(c settings.Config) []lineChoice {
	var out []lineChoice
	for i, l := range c.Lines {
		label := fmt.Sprintf("Line %d", i+1)
		if l.Name != "" {
			label += " (" + l.Name + ")"
		}
		out = append(out, lineChoice{i + 1, label})
	}
	return out
}

// lineNumber reads the line selector; 1 when absent.
func lineNumber(r *http.Request, c settings.Config) (int, bool) {
	v := r.FormValue("line")
	if v == "" {
		return 1, true
	}
	n, err := strconv.Atoi(v)
	return n, err == nil && n >= 1 && n <= len(c.Lines)
}

func (s *Server) linePage(w http.ResponseWriter, r *http.Request) {
	c := s.Settings()
	n, ok := lineNumber(r, c)
	if !ok {
		http.Error(w, "no such line", http.StatusNotFound)
		return
	}
	l := c.Lines[n-1].Defaults()
	vals := map[string]string{
		"enable_failback":             strconv.Itoa(*l.EnableFailback),
		"failback_interval":           strconv.Itoa(*l.FailbackInterval),
		"signal_retry_counts":         strconv.Itoa(*l.SignalRetryCounts),
		"invite_retry_counts":         strconv.Itoa(*l.InviteRetryCounts),
		"user":                        l.User,
		"auth_user":                   l.AuthUser,
		"display_name":                l.DisplayName,
		"domain":                      l.Domain,
		"failback_mode":               l.FailbackMode,
		"failback_when":               l.FailbackWhen,
		"registration_mode":           l.RegistrationMode,
		"only_signal_with_registered": strconv.Itoa(*l.OnlySignalWithRegistered),
		"outbound":                    map[bool]string{true: "on", false: "off"}[l.Outbound],
		// Advanced: the timers and what makes a server unavailable.
		"t1":                     l.T1.String(),
		"t2":                     l.T2.String(),
		"retry_mode":             l.RetryMode,
		"retry_time":             l.RetryTime.String(),
		"keepalive_interval":     l.KeepaliveInterval.String(),
		"nat_keepalive_interval": l.NATKeepaliveInterval.String(),
		"nat_keepalive_mode":     l.NATKeepaliveMode,
		"unavailable_codes":      codesText(l.UnavailableCodes),
	}
	for i, srv := range l.Servers[:min(2, len(l.Servers))] { // one domain name can stand for both (R20)
		p := fmt.Sprintf("server%d_", i+1)
		vals[p+"addr"], vals[p+"port"] = srv.Addr, strconv.Itoa(*srv.Port)
		vals[p+"ttl"], vals[p+"transport"] = strconv.Itoa(*srv.TTL), strconv.Itoa(*srv.Transport)
		vals[p+"register_on_enable"] = strconv.Itoa(*srv.RegisterOnEnable)
	}
	for i := range 2 {
		p := fmt.Sprintf("proxy%d_", i+1)
		vals[p+"transport"], vals[p+"register_on_enable"] = "0", "1"
		if i < len(l.OutboundProxies) {
			px := l.OutboundProxies[i]
			vals[p+"addr"], vals[p+"port"], vals[p+"transport"] = px.Addr, strconv.Itoa(*px.Port), strconv.Itoa(*px.Transport)
			vals[p+"register_on_enable"] = strconv.Itoa(*px.RegisterOnEnable)
		}
	}
	s.render(w, http.StatusOK, "line.html", lineForm{CSRF: session(r).csrf, Lines: s.choices(c), Line: n,
		Values: vals, Errors: map[string]string{}, Saved: r.FormValue("saved") == "1", Extra: max(0, len(l.Servers)-2),
		ExtraProxies: max(0, len(l.OutboundProxies)-2), State: s.lineState(n)})
}

// submitLine applies the form to the line: every field is parsed and the
// whole settings validated; with any problem nothing changes and the form
// comes back with each message beside its field.
func (s *Server) submitLine(w http.ResponseWriter, r *http.Request) {
	c := s.Settings()
	n, ok := lineNumber(r, c)
	if !ok {
		http.Error(w, "no such line", http.StatusNotFound)
		return
	}
	form := lineForm{CSRF: session(r).csrf, Lines: s.choices(c), Line: n, Values: map[string]string{}, Errors: map[string]string{},
		Extra: max(0, len(c.Lines[n-1].Servers)-2), ExtraProxies: max(0, len(c.Lines[n-1].OutboundProxies)-2), State: s.lineState(n)}
	for _, f := range formFields {
		form.Values[f.name] = strings.TrimSpace(r.PostFormValue(f.name))
	}
	// Every field is checked at once: the fields that are no numbers keep
	// their running values for the check of the others.
	next, errs := edit(c, n-1, form.Values)
	if err := next.Validate(); err != nil {
		for name, msg := range fieldProblems(err, n-1, &form.General) {
			if _, bad := errs[name]; !bad {
				errs[name] = msg
			}
		}
	}
	if len(errs) == 0 && len(form.General) == 0 {
		if err := s.Apply(next); err != nil {
			form.General = append(form.General, "not applied: "+err.Error())
		} else {
			http.Redirect(w, r, fmt.Sprintf("/line?line=%d&saved=1", n), http.StatusSeeOther)
			return
		}
	}
	form.Errors = errs
	s.render(w, http.StatusUnprocessableEntity, "line.html", form)
}

// edit returns c with line i changed as the form says, or the fields that
// are not numbers.
func edit(c settings.Config, i int, v map[string]string) (settings.Config, map[string]string) {
	errs := map[string]string{}
	num := func(name string, running *int) *int {
		n, err := strconv.Atoi(v[name])
		if err != nil {
			if v[name] == "" {
				errs[name] = "required"
			} else {
				errs[name] = "must be a whole number"
			}
			return running
		}
		return &n
	}
	dur := func(name string, running settings.Duration) settings.Duration {
		d, err := time.ParseDuration(v[name])
		if err != nil {
			errs[name] = "must be a duration such as 500ms, 4s or 1m (0s is off where the setting allows it)"
			return running
		}
		return settings.Duration(d)
	}
	next := c
	next.Lines = append([]settings.LineConfig(nil), c.Lines...)
	l := next.Lines[i]
	l.OutboundProxies = editProxies(l.OutboundProxies, v, errs)
	l.Servers = append([]settings.ServerConfig(nil), l.Servers...)
	for j := range 2 {
		p := fmt.Sprintf("server%d_", j+1)
		if j == 1 && len(l.OutboundProxies) > 0 && v[p+"addr"] == "" && len(l.Servers) == 2 {
			// Behind outbound proxies the servers are the registrars
			// (R22): an emptied second one goes.
			l.Servers = l.Servers[:1]
			break
		}
		if j == len(l.Servers) {
			// A line of one domain name (R20) has no backup to edit; a
			// backup address given here is added.
			if v[p+"addr"] == "" {
				break
			}
			l.Servers = append(l.Servers, settings.ServerConfig{})
		}
		srv := l.Servers[j]
		srv.Addr = v[p+"addr"]
		srv.Port, srv.TTL, srv.Transport = num(p+"port", srv.Port), num(p+"ttl", srv.TTL), num(p+"transport", srv.Transport)
		if v[p+"register_on_enable"] != "" { // absent from an older form: kept
			srv.RegisterOnEnable = num(p+"register_on_enable", srv.RegisterOnEnable)
		}
		l.Servers[j] = srv
	}
	l.EnableFailback = num("enable_failback", l.EnableFailback)
	l.FailbackInterval = num("failback_interval", l.FailbackInterval)
	l.SignalRetryCounts = num("signal_retry_counts", l.SignalRetryCounts)
	l.InviteRetryCounts = num("invite_retry_counts", l.InviteRetryCounts)
	l.FailbackMode, l.FailbackWhen, l.RegistrationMode = v["failback_mode"], v["failback_when"], v["registration_mode"]
	switch v["outbound"] {
	case "on", "off":
		l.Outbound = v["outbound"] == "on"
	case "": // absent from an older form: kept
	default:
		errs["outbound"] = "must be on or off"
	}
	if v["only_signal_with_registered"] != "" {
		l.OnlySignalWithRegistered = num("only_signal_with_registered", l.OnlySignalWithRegistered)
	}
	l.T1, l.T2, l.RetryTime = dur("t1", l.T1), dur("t2", l.T2), dur("retry_time", l.RetryTime)
	l.KeepaliveInterval = dur("keepalive_interval", l.KeepaliveInterval)
	nat := dur("nat_keepalive_interval", 0)
	if _, bad := errs["nat_keepalive_interval"]; !bad {
		l.NATKeepaliveInterval = &nat
	}
	l.RetryMode, l.NATKeepaliveMode = v["retry_mode"], v["nat_keepalive_mode"]
	switch codes, err := parseCodes(v["unavailable_codes"]); {
	case err != nil:
		errs["unavailable_codes"] = err.Error()
	default:
		l.UnavailableCodes = codes // none given: the default, 500 and 503
	}
	l.User, l.AuthUser, l.DisplayName, l.Domain = v["user"], v["auth_user"], v["display_name"], v["domain"]
	if v["password"] != "" { // empty keeps the line's: the page never shows it
		l.Password = v["password"]
	}
	next.Lines[i] = l
	return next, errs
}

// editProxies returns the outbound proxies as the form's Outbound Proxy 1
// and 2 give them (R22), the ones past the second kept: an empty address
// is no proxy, an empty port or transport the default. Proxy 2 without
// proxy 1 is an error at proxy 1.
func editProxies(running []settings.ServerConfig, v, errs map[string]string) []settings.ServerConfig {
	var out []settings.ServerConfig
	for j := range 2 {
		p := fmt.Sprintf("proxy%d_", j+1)
		if v[p+"addr"] == "" {
			if j == 0 && v["proxy2_addr"] != "" {
				errs[p+"addr"] = "Outbound Proxy 2 is the backup of Outbound Proxy 1: give proxy 1 first"
			}
			continue
		}
		px := settings.ServerConfig{Addr: v[p+"addr"]}
		if j < len(running) {
			px.TLSServerName = running[j].TLSServerName
		}
		for _, f := range []struct {
			name string
			to   **int
		}{{"port", &px.Port}, {"transport", &px.Transport}, {"register_on_enable", &px.RegisterOnEnable}} {
			if v[p+f.name] == "" {
				continue
			}
			n, err := strconv.Atoi(v[p+f.name])
			if err != nil {
				errs[p+f.name] = "must be a whole number"
				continue
			}
			*f.to = &n
		}
		out = append(out, px)
	}
	if len(out) == 2 && len(running) > 2 {
		out = append(out, running[2:]...)
	}
	return out
}

// codesText writes response codes as the form shows them: "500, 503".
func codesText(codes []int) string {
	var parts []string
	for _, c := range codes {
		parts = append(parts, strconv.Itoa(c))
	}
	return strings.Join(parts, ", ")
}

// parseCodes reads response codes as the form takes them, separated by
// commas or spaces; none is nil, the default.
func parseCodes(text string) ([]int, error) {
	var codes []int
	for _, f := range strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == ' ' }) {
		c, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a response code: write codes such as 500, 503", f)
		}
		codes = append(codes, c)
	}
	return codes, nil
}

// fieldProblems sorts a validation error's problems of line i onto the
// form's fields; the others go to general.
func fieldProblems(err error, i int, general *[]string) map[string]string {
	errs := map[string]string{}
	verr, ok := err.(*settings.ValidationError)
	if !ok {
		*general = append(*general, err.Error())
		return errs
	}
	for _, p := range verr.Problems {
		placed := false
		for _, f := range formFields {
			if p.Index == i && p.Field == f.setting {
				errs[f.name] = p.Msg
				placed = true
			}
		}
		if !placed {
			*general = append(*general, p.String())
		}
	}
	return errs
}
