package runtime

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Transport codes, as the seed's settings number them.
const (
	TransportUDP = 0 // SIPN Transport 0
	TransportTCP = 1 // SIPN Transport 1
	TransportTLS = 3 // SIPN Transport 3
	// TransportAuto lets the domain's NAPTR records choose (RFC 3263 4.1),
	// for a server given by name with port 0; the seed leaves 2 unused.
	TransportAuto = 2
)

// Config is the settings file: any number of lines.
type Config struct {
	// TLSCAFile is a PEM file of the roots that TLS servers' certificates
	// are checked against; empty uses the system's roots.
	TLSCAFile string       `yaml:"tls_ca_file,omitempty" json:"tls_ca_file,omitempty"`
	Lines     []LineConfig `yaml:"lines" json:"lines"`
	// MaxCalls bounds the calls of all lines at once (I11); 0 is
	// DefaultMaxCalls.
	MaxCalls int `yaml:"max_calls,omitempty" json:"max_calls,omitempty"`
	// Web turns on the configuration and status pages (R15); nil is off.
	Web *WebConfig `yaml:"web,omitempty" json:"web,omitempty"`
	// DNS says where servers given by name are looked up (R20); nil asks
	// the servers of /etc/resolv.conf.
	DNS *DNSConfig `yaml:"dns,omitempty" json:"dns,omitempty"`
	// Pacing bounds the new requests all lines together send one server
	// (R21); nil is DefaultPacing, a rate of 0 turns it off.
	Pacing *Pacing `yaml:"pacing,omitempty" json:"pacing,omitempty"`
}

// PacingOrDefault is the pacing the settings ask for.
func (c Config) PacingOrDefault() Pacing {
	if c.Pacing == nil {
		return DefaultPacing
	}
	return *c.Pacing
}

// DNSConfig is the resolver the lines' server names are looked up with.
type DNSConfig struct {
	// Servers are DNS servers, IP addresses with an optional port
	// ("127.0.0.1:5353", "[::1]:53"), asked in turn. Empty asks those of
	// /etc/resolv.conf, and the host's resolver (with /etc/hosts) for
	// addresses.
	Servers []string `yaml:"servers,omitempty" json:"servers,omitempty"`
}

// Resolver returns the resolver the settings ask for.
func (c Config) Resolver() *DNSResolver {
	if c.DNS == nil {
		return NewDNSResolver(nil)
	}
	var servers []string
	for _, s := range c.DNS.Servers {
		if hp, err := ParseDNSServer(s); err == nil {
			servers = append(servers, hp)
		}
	}
	return NewDNSResolver(servers)
}

// WebConfig is where the pages listen and who may use them.
type WebConfig struct {
	// Listen is host:port; default 127.0.0.1:8080 (loopback only).
	Listen string `yaml:"listen" json:"listen"`
	// PasswordHash is the bcrypt hash of the pages' password, as
	// `sipfailover hash-password` prints it; the password itself is never
	// stored.
	PasswordHash string `yaml:"password_hash" json:"password_hash"`
	// AllowRemote lets Listen be an address off loopback; the pages are
	// then served over TLS only, with TLSCert and TLSKey.
	AllowRemote bool   `yaml:"allow_remote,omitempty" json:"allow_remote,omitempty"`
	TLSCert     string `yaml:"tls_cert,omitempty" json:"tls_cert,omitempty"` // PEM certificate (chain) of the pages
	TLSKey      string `yaml:"tls_key,omitempty" json:"tls_key,omitempty"`   // PEM private key of the pages
	// MetricsToken lets a scraper read /metrics with it as a bearer token
	// (Prometheus' authorization setting) without logging in; at least 16
	// characters.
	MetricsToken string `yaml:"metrics_token,omitempty" json:"metrics_token,omitempty"`
}

// The range of a server's TTL, in seconds: the floor keeps a line from
// refreshing more often than a server's shortest grant allows (I11).
const (
	MinTTL = 10
	MaxTTL = 7 * 86400
)

// DefaultWebListen is where the pages listen unless the settings say.
const DefaultWebListen = "127.0.0.1:8080"

// LineConfig is one line's settings. Fields whose seed default is not zero
// are pointers, so that "absent" and "0" differ; Defaults fills them.
type LineConfig struct {
	Name        string `yaml:"name,omitempty" json:"name,omitempty"`                 // a label for status and logs
	User        string `yaml:"user" json:"user"`                                     // the user part of the line's address of record
	AuthUser    string `yaml:"auth_user,omitempty" json:"auth_user,omitempty"`       // digest user name; default User
	Password    string `yaml:"password,omitempty" json:"password,omitempty"`         // digest password
	Domain      string `yaml:"domain,omitempty" json:"domain,omitempty"`             // the domain of the address of record; default the server's address
	DisplayName string `yaml:"display_name,omitempty" json:"display_name,omitempty"` // display name in From and To

	// Servers in priority order: servers[0] is SIPN Register Addr/Port/TTL/
	// Transport (the primary), servers[1] SIPN Backup Addr/... (the backup).
	Servers []ServerConfig `yaml:"servers" json:"servers"`

	EnableFailback    *int     `yaml:"enable_failback,omitempty" json:"enable_failback,omitempty"`         // SIPN Enable Failback: 0 or 1; default 1
	FailbackInterval  *int     `yaml:"failback_interval,omitempty" json:"failback_interval,omitempty"`     // SIPN Failback Interval, seconds; default 1800
	SignalRetryCounts *int     `yaml:"signal_retry_counts,omitempty" json:"signal_retry_counts,omitempty"` // SIPN Signal Retry Counts; default 3
	RetryMode         string   `yaml:"retry_mode,omitempty" json:"retry_mode,omitempty"`                   // "count" (default, the seed's V3) or "time" (V2)
	RetryTime         Duration `yaml:"retry_time,omitempty" json:"retry_time,omitempty"`                   // budget per server in time mode; default 4s
	T1                Duration `yaml:"t1,omitempty" json:"t1,omitempty"`                                   // RFC 3261 T1; default 500ms
	T2                Duration `yaml:"t2,omitempty" json:"t2,omitempty"`                                   // RFC 3261 T2; default 4s
	KeepaliveInterval Duration `yaml:"keepalive_interval,omitempty" json:"keepalive_interval,omitempty"`   // OPTIONS keep-alive period; 0 (default) is off
	// DeregisterBackupAfterFailback removes the binding on the backup after
	// failback (R12): 0 (default) or 1.
	DeregisterBackupAfterFailback int      `yaml:"deregister_backup_after_failback,omitempty" json:"deregister_backup_after_failback,omitempty"`
	UnavailableCodes              []int    `yaml:"unavailable_codes,omitempty" json:"unavailable_codes,omitempty"` // responses that make a server unavailable; default 500, 503
	BackoffBase                   Duration `yaml:"backoff_base,omitempty" json:"backoff_base,omitempty"`           // RFC 5626 4.5 base time; default 30s
	BackoffMax                    Duration `yaml:"backoff_max,omitempty" json:"backoff_max,omitempty"`             // RFC 5626 4.5 maximum; default 30m
	// MaxIncomingCalls is how many calls delivered to the line may be up at
	// once; more are answered 486 Busy Here. Default 8.
	MaxIncomingCalls *int `yaml:"max_incoming_calls,omitempty" json:"max_incoming_calls,omitempty"`
	// MaxCallDuration is the longest a call may stay up; then the line ends
	// it with a BYE (I11). Default 4h.
	MaxCallDuration Duration `yaml:"max_call_duration,omitempty" json:"max_call_duration,omitempty"`
	// FailbackMode says when a line on a lower-priority server tries the
	// primary (R18): duration (the default: every FailbackInterval),
	// registration (at each refresh of the registration it is on),
	// new_requests (when the user starts a new request), dns_ttl (when the
	// primary's DNS records are looked up again).
	FailbackMode string `yaml:"failback_mode,omitempty" json:"failback_mode,omitempty"`
	// FailbackWhen is idle (the default: no failback while a call of the
	// line is up) or always (R18).
	FailbackWhen string `yaml:"failback_when,omitempty" json:"failback_when,omitempty"`
	// InviteRetryCounts is the transmissions of an INVITE to a server before
	// it counts as unavailable (R19); default SignalRetryCounts.
	InviteRetryCounts *int `yaml:"invite_retry_counts,omitempty" json:"invite_retry_counts,omitempty"`
	// RegistrationMode is successive (the default, the seed's: one server at
	// a time) or concurrent (a registration on every server at once, R17).
	RegistrationMode string `yaml:"registration_mode,omitempty" json:"registration_mode,omitempty"`
	// TimerSpread is the percent (0-50) taken off the refresh, keep-alive
	// and failback timers at random, so that lines armed together do not
	// fire together (R21); 0, the default, fires them on time.
	TimerSpread int `yaml:"timer_spread,omitempty" json:"timer_spread,omitempty"`
}

// ServerConfig is one server of a line.
type ServerConfig struct {
	Addr string `yaml:"addr" json:"addr"` // IP address or domain name
	// Port is the server's port; 0 looks the name up in DNS SRV (RFC 3263,
	// R20). Default 5060 (5061 for TLS), 0 for transport 2.
	Port *int `yaml:"port,omitempty" json:"port,omitempty"`
	// Transport: 0 UDP (default), 1 TCP, 3 TLS, 2 what the name's NAPTR
	// records choose (with port 0).
	Transport *int `yaml:"transport,omitempty" json:"transport,omitempty"`
	TTL       *int `yaml:"ttl,omitempty" json:"ttl,omitempty"` // registration expiry asked for, seconds; default 3600
	// TLSServerName is the name the server's certificate must carry; default Addr.
	TLSServerName string `yaml:"tls_server_name,omitempty" json:"tls_server_name,omitempty"`
}

// Duration is a time.Duration written as in Go: 500ms, 4s, 30m.
type Duration time.Duration

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration such as 500ms or 4s", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as Go does.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// MarshalJSON writes the duration as Go does: "500ms".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "500ms", "4s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%s is not a duration such as \"500ms\" or \"4s\"", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 500ms or 4s", s)
	}
	*d = Duration(v)
	return nil
}

func intp(v int) *int { return &v }

// Defaults returns a copy with every absent setting at its default.
func (c LineConfig) Defaults() LineConfig {
	c.Servers = slices.Clone(c.Servers)
	if c.AuthUser == "" {
		c.AuthUser = c.User
	}
	if c.EnableFailback == nil {
		c.EnableFailback = intp(1)
	}
	if c.FailbackInterval == nil {
		c.FailbackInterval = intp(1800)
	}
	if c.SignalRetryCounts == nil {
		c.SignalRetryCounts = intp(3)
	}
	if c.RetryMode == "" {
		c.RetryMode = "count"
	}
	if c.RetryTime == 0 {
		c.RetryTime = Duration(4 * time.Second)
	}
	if c.T1 == 0 {
		c.T1 = Duration(500 * time.Millisecond)
	}
	if c.T2 == 0 {
		c.T2 = Duration(4 * time.Second)
	}
	if c.UnavailableCodes == nil {
		c.UnavailableCodes = []int{500, 503}
	}
	if c.BackoffBase == 0 {
		c.BackoffBase = Duration(30 * time.Second)
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = Duration(30 * time.Minute)
	}
	if c.MaxIncomingCalls == nil {
		c.MaxIncomingCalls = intp(8)
	}
	if c.MaxCallDuration == 0 {
		c.MaxCallDuration = Duration(4 * time.Hour)
	}
	if c.FailbackMode == "" {
		c.FailbackMode = "duration"
	}
	if c.FailbackWhen == "" {
		c.FailbackWhen = "idle"
	}
	if c.RegistrationMode == "" {
		c.RegistrationMode = "successive"
	}
	if c.InviteRetryCounts == nil {
		c.InviteRetryCounts = intp(*c.SignalRetryCounts)
	}
	for i, s := range c.Servers {
		if s.Transport == nil {
			s.Transport = intp(TransportUDP)
		}
		if s.Port == nil {
			switch *s.Transport {
			case TransportAuto:
				s.Port = intp(0)
			case TransportTLS:
				s.Port = intp(5061)
			default:
				s.Port = intp(5060)
			}
		}
		if s.TTL == nil {
			s.TTL = intp(3600)
		}
		c.Servers[i] = s
	}
	return c
}

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
		case n == 1 && net.ParseIP(l.Servers[0].Addr) == nil && *l.Servers[0].Port == 0:
			// One domain name looked up in DNS SRV: its targets are the
			// line's servers, primary and backups (R20).
		case n < 2 || n > 4:
			bad("servers", "%d servers; a line has 2 to 4 (primary first), or one domain name with port 0 whose DNS SRV targets are its servers", n)
		}
		for j, s := range l.Servers {
			f := fmt.Sprintf("servers[%d].", j)
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
			if *s.TTL < MinTTL || *s.TTL > MaxTTL {
				bad(f+"ttl", "%d is outside %d-%d (seconds)", *s.TTL, MinTTL, MaxTTL)
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
		case l.FailbackMode == "dns_ttl" && len(l.Servers) > 0 && net.ParseIP(l.Servers[0].Addr) != nil:
			bad("failback_mode", "dns_ttl tries the primary when its DNS records expire; servers[0].addr %s is an address, which has none", l.Servers[0].Addr)
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
			bad("retry_time", "%v is below t1 (%v), the round-trip estimate: no answer could come in time", time.Duration(l.RetryTime), time.Duration(l.T1))
		}
		if l.T2 < l.T1 {
			bad("t2", "%v is below t1 (%v)", time.Duration(l.T2), time.Duration(l.T1))
		}
		if l.BackoffMax < l.BackoffBase {
			bad("backoff_max", "%v is below backoff_base (%v)", time.Duration(l.BackoffMax), time.Duration(l.BackoffBase))
		}
		if l.KeepaliveInterval < 0 {
			bad("keepalive_interval", "%v: must be 0 (off) or positive", time.Duration(l.KeepaliveInterval))
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
			if _, err := ParseDNSServer(s); err != nil {
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

// ParseConfig reads and validates a settings file's contents. Unknown fields
// are errors, so that a misspelt setting is not silently ignored.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	if err := decodeSettings(data, &c); err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
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

// TLSConfig returns the client TLS settings: the CA file's roots if set.
func (c Config) TLSConfig() (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLSCAFile == "" {
		return conf, nil
	}
	pem, err := os.ReadFile(c.TLSCAFile)
	if err != nil {
		return nil, fmt.Errorf("tls_ca_file: %w", err)
	}
	conf.RootCAs = x509.NewCertPool()
	if !conf.RootCAs.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls_ca_file: %s holds no PEM certificate", c.TLSCAFile)
	}
	return conf, nil
}

// LoadConfig reads and validates a settings file.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	c, err := ParseConfig(data)
	var se *SyntaxError
	switch {
	case errors.As(err, &se):
		se.Path = path
		return Config{}, se
	case err != nil:
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// SaveConfig validates c and stores it at path atomically (R15): it writes
// a temporary file beside path, syncs it, renames it over path and syncs
// the folder, so a crash at any moment leaves either the old settings or
// the new ones, whole. A config with any problem is not written.
func SaveConfig(path string, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	data, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // gone after the rename; removes a failed attempt
	if info, err := os.Stat(path); err == nil {
		f.Chmod(info.Mode().Perm()) // keep the old file's permissions: it holds passwords
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
