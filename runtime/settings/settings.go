package settings

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/sipfailover/sipfailover/fsm"
	"github.com/sipfailover/sipfailover/runtime/locate"
	"github.com/sipfailover/sipfailover/runtime/transport"
	"go.yaml.in/yaml/v3"
)

// Transport codes, as the seed's settings number them.
const (
	TransportUDP = transport.UDP // SIPN Transport 0
	TransportTCP = transport.TCP // SIPN Transport 1
	TransportTLS = transport.TLS // SIPN Transport 3
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

// Pacing bounds what an agent's lines together start towards one server
// (R21): at most Burst new requests at once, then Rate a second. A request
// beyond the bound waits for its turn before its first transmission; its
// budget counts from that transmission, so that waiting is never taken for
// the server's silence. Retransmissions, ACKs and responses are never held.
type Pacing struct {
	// Rate is new requests a second to one server; 0 turns pacing off.
	Rate float64 `yaml:"rate" json:"rate"`
	// Burst is how many may go at once after a quiet spell; at least 1.
	Burst int `yaml:"burst" json:"burst"`
}

// DefaultPacing is the pacing of an agent whose settings do not say: far
// above what a handful of lines sends, well below what a fleet of
// thousands failing over at once would.
var DefaultPacing = Pacing{Rate: 500, Burst: 100}

// Validate says what is wrong with p, naming the field.
func (p Pacing) Validate() error {
	switch {
	case p.Rate < 0 || p.Rate > 1e6 || p.Rate != p.Rate:
		return fmt.Errorf("pacing.rate %v is outside 0 (off) to 1000000 requests a second", p.Rate)
	case p.Rate > 0 && (p.Burst < 1 || p.Burst > 1e6):
		return fmt.Errorf("pacing.burst %d is outside 1-1000000 (with a rate, at least one request goes at once)", p.Burst)
	}
	return nil
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
func (c Config) Resolver() *locate.DNSResolver {
	if c.DNS == nil {
		return locate.NewDNSResolver(nil)
	}
	var servers []string
	for _, s := range c.DNS.Servers {
		if hp, err := locate.ParseDNSServer(s); err == nil {
			servers = append(servers, hp)
		}
	}
	return locate.NewDNSResolver(servers)
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
	// OutboundProxies are the line's outbound proxies in priority order
	// (R22; desk phones' Outbound Proxy 1, 2): when set, every request goes
	// to the current proxy with a pre-loaded Route, servers holds the one
	// registrar behind them, and failover and failback move between the
	// proxies. A proxy has no ttl: the registrar's applies.
	OutboundProxies []ServerConfig `yaml:"outbound_proxies,omitempty" json:"outbound_proxies,omitempty"`
	// Outbound turns on RFC 5626 SIP outbound through the proxies (R24):
	// a registration through every proxy at once (registration_mode
	// concurrent), each its own flow, with the line's +sip.instance and a
	// reg-id per proxy on its Contact, so that the registrar keeps them
	// all and a call moves to another flow with no REGISTER.
	Outbound bool `yaml:"outbound,omitempty" json:"outbound,omitempty"`

	EnableFailback    *int     `yaml:"enable_failback,omitempty" json:"enable_failback,omitempty"`         // SIPN Enable Failback: 0 or 1; default 1
	FailbackInterval  *int     `yaml:"failback_interval,omitempty" json:"failback_interval,omitempty"`     // SIPN Failback Interval, seconds; default 1800
	SignalRetryCounts *int     `yaml:"signal_retry_counts,omitempty" json:"signal_retry_counts,omitempty"` // SIPN Signal Retry Counts; default 3
	RetryMode         string   `yaml:"retry_mode,omitempty" json:"retry_mode,omitempty"`                   // "count" (default, the seed's V3) or "time" (V2)
	RetryTime         Duration `yaml:"retry_time,omitempty" json:"retry_time,omitempty"`                   // budget per server in time mode; default 4s
	T1                Duration `yaml:"t1,omitempty" json:"t1,omitempty"`                                   // RFC 3261 T1; default 500ms
	T2                Duration `yaml:"t2,omitempty" json:"t2,omitempty"`                                   // RFC 3261 T2; default 4s
	KeepaliveInterval Duration `yaml:"keepalive_interval,omitempty" json:"keepalive_interval,omitempty"`   // OPTIONS keep-alive period; 0 (default) is off
	// NATKeepaliveInterval is the period of the flow keep-alive (RFC 5626
	// 4.4): CRLFCRLF on a TCP or TLS connection, a STUN Binding request over
	// UDP, no SIP transaction; each wait drawn in 80-100 % of it. Default
	// 30s, 0 off.
	NATKeepaliveInterval *Duration `yaml:"nat_keepalive_interval,omitempty" json:"nat_keepalive_interval,omitempty"`
	// NATKeepaliveMode is auto (the default: STUN over UDP, CRLFCRLF over
	// TCP and TLS) or crlf (a bare CRLF datagram over UDP instead of STUN,
	// which still draws ICMP from a closed port but no answer).
	NATKeepaliveMode string `yaml:"nat_keepalive_mode,omitempty" json:"nat_keepalive_mode,omitempty"`
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
	// OnlySignalWithRegistered (desk phones' only_signal_with_registered;
	// R23): 1, the default, a new request goes only to a server the line is
	// registered on (I5); 0, also to the one it is registering on, without
	// waiting for its 200 OK.
	OnlySignalWithRegistered *int `yaml:"only_signal_with_registered,omitempty" json:"only_signal_with_registered,omitempty"`
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
	// RegisterOnEnable (desk phones' register_on_enable; R23): 1, the
	// default and the seed's flow, the line registers on this server before
	// it sends it a request that fails over; 0, the server shares the
	// registrations of the others, so a request that fails over goes to it
	// at once (the line still registers there after).
	RegisterOnEnable *int `yaml:"register_on_enable,omitempty" json:"register_on_enable,omitempty"`
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

// String spells d as the models' bounds do, in whole units: 500us, 90s,
// 1h; so every message about a setting spells durations one way.
func (d Duration) String() string { return fsm.Duration(d).String() }

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

// defaults fills a server's absent transport and port, and its TTL with
// ttl (nil: left absent, as a proxy's).
func (s ServerConfig) defaults(ttl *int) ServerConfig {
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
		s.TTL = ttl
	}
	if s.RegisterOnEnable == nil {
		s.RegisterOnEnable = intp(1)
	}
	return s
}

// Hops are where the line sends its requests, in priority order: the
// servers it fails over and back between. They are its outbound proxies
// when it has them (R22), each asking the registrar's TTL, else its
// servers. Call it on a LineConfig with its defaults.
func (c LineConfig) Hops() []ServerConfig {
	if len(c.OutboundProxies) == 0 || len(c.Servers) == 0 {
		return c.Servers
	}
	hops := slices.Clone(c.OutboundProxies)
	for i := range hops {
		hops[i].TTL = c.Servers[0].TTL
	}
	return hops
}

// Proxied says whether the line sends its requests through outbound
// proxies to the registrars of its servers (R22).
func (c LineConfig) Proxied() bool { return len(c.OutboundProxies) > 0 }

// RegistrarCount is the number of registrars behind the line's outbound
// proxies, in priority order (R22); 1 without proxies, whose servers are
// the hops.
func (c LineConfig) RegistrarCount() int {
	if !c.Proxied() {
		return 1
	}
	return max(1, len(c.Servers))
}

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
	if c.NATKeepaliveInterval == nil {
		d := Duration(30 * time.Second)
		c.NATKeepaliveInterval = &d
	}
	if c.NATKeepaliveMode == "" {
		c.NATKeepaliveMode = "auto"
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
	if c.OnlySignalWithRegistered == nil {
		c.OnlySignalWithRegistered = intp(1)
	}
	for i := range c.Servers {
		c.Servers[i] = c.Servers[i].defaults(intp(3600))
	}
	c.OutboundProxies = slices.Clone(c.OutboundProxies)
	for i := range c.OutboundProxies {
		c.OutboundProxies[i] = c.OutboundProxies[i].defaults(nil)
	}
	return c
}
