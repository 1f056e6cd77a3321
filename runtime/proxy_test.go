package runtime_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/runtimetest"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
)

// proxiedPair is a simPair whose primary and backup are outbound proxies
// in front of the registrar registrar.example.com:5090 (R22).
func proxiedPair(t *testing.T, tr int, opts ...runtime.Option) *simPair {
	t.Helper()
	return newSimPair(t, tr, 10*time.Millisecond, func(l *settings.LineConfig) {
		l.OutboundProxies = l.Servers
		port, ttl, every := 5090, 60, 120
		l.Servers = []settings.ServerConfig{{Addr: "registrar.example.com", Port: &port, TTL: &ttl}}
		l.FailbackInterval = &every
		l.NATKeepaliveInterval = new(settings.Duration(0))
	}, opts...)
}

// TestOutboundProxies: R22. Behind outbound proxies every request goes to
// the current proxy with the proxy as a pre-loaded loose Route and the
// registrar as Request-URI, a REGISTER asks for Path; the line fails over
// to the backup proxy when the primary proxy goes silent, the registrar
// staying the same, and fails back to the primary proxy when it answers
// the probe. The status names the proxy in use and the registrar.
func TestOutboundProxies(t *testing.T) {
	p := proxiedPair(t, transport.UDP)
	p.line.Register()
	p.clock.Advance(time.Second)
	st := p.line.Status()
	if st.State != "primary_registered" || st.ServerAddr != "UDP 192.0.2.1:5060" || st.Registrar != "registrar.example.com (5090, UDP)" ||
		st.Where != "UDP 192.0.2.1:5060 to the registrar registrar.example.com (5090, UDP)" {
		t.Fatalf("status %s at %s (%s), registrar %q: want primary_registered at the primary proxy, registrar named", st.State, st.ServerAddr, st.Where, st.Registrar)
	}
	checkProxied := func(r runtimetest.SimRequest, proxy transport.Endpoint) {
		t.Helper()
		want := []string{"<sip:" + proxy.Addr() + ";lr>"}
		if r.Method == "REGISTER" {
			if got := r.Request.Recipient.String(); got != "sip:registrar.example.com:5090" {
				t.Errorf("REGISTER to %s names %s, want the registrar", proxy, got)
			}
			if h := r.Request.GetHeader("Supported"); h == nil || h.Value() != "path" {
				t.Errorf("REGISTER to %s asks no Path support: %v", proxy, h)
			}
			if r.Request.From().Address.Host != "registrar.example.com" {
				t.Errorf("From %s: want the registrar's domain", r.Request.From().Address.String())
			}
		}
		if !slices.Equal(r.Route, want) {
			t.Errorf("%s to %s has Route %q, want %q", r.Method, proxy, r.Route, want)
		}
	}
	for _, r := range p.network.Requests(p.primary) {
		checkProxied(r, p.primary)
	}

	p.network.Set(p.primary, func(s *runtimetest.SimServer) { s.Mode = runtimetest.SimSilent })
	p.clock.Advance(time.Minute) // the refresh at 48 s finds the primary proxy silent
	if st := p.line.Status(); st.State != "backup_registered" || st.ServerAddr != "UDP 192.0.2.2:5060" || st.Registrar != "registrar.example.com (5090, UDP)" {
		t.Fatalf("after the primary proxy went silent: %s at %s, registrar %q; want the backup proxy, the same registrar", st.State, st.ServerAddr, st.Registrar)
	}
	backup := p.network.Requests(p.backup)
	if len(backup) == 0 {
		t.Fatal("nothing went to the backup proxy")
	}
	for _, r := range backup {
		checkProxied(r, p.backup)
	}

	p.network.Set(p.primary, func(s *runtimetest.SimServer) { s.Mode = runtimetest.SimUp })
	from := len(p.network.Requests(p.primary))
	p.clock.Advance(3 * time.Minute) // the failback interval is 120 s
	if st := p.line.Status(); st.State != "primary_registered" || st.ServerAddr != "UDP 192.0.2.1:5060" {
		t.Fatalf("after the primary proxy came back: %s at %s, want primary_registered through it", st.State, st.ServerAddr)
	}
	for _, r := range p.network.Requests(p.primary)[from:] {
		checkProxied(r, p.primary)
	}
	for _, r := range p.network.Requests(p.backup) {
		if r.Method == "REGISTER" && r.Expires == 0 {
			t.Errorf("the backup proxy got a de-registration at %v: through one registrar it would remove the binding failback made", r.At)
		}
	}
}

// TestCallThroughTheBackupProxy: a call the far end places through the
// proxy the line registered through reaches the line (Path), and a call
// the line places goes through the current proxy with the proxy as its
// Route.
func TestCallThroughTheBackupProxy(t *testing.T) {
	p := proxiedPair(t, transport.TCP)
	p.line.Register()
	p.clock.Advance(time.Second)
	p.network.Set(p.primary, func(s *runtimetest.SimServer) { s.Mode = runtimetest.SimICMP })
	p.clock.Advance(time.Minute)
	if st := p.line.Status(); st.ServerAddr != "TCP 192.0.2.2:5060" {
		t.Fatalf("the line is at %s, want the backup proxy", st.ServerAddr)
	}
	id := p.network.CallLine(p.backup, "1001", "registrar.example.com")
	p.clock.Advance(time.Second)
	if c := farCall(p.network, id); c == nil || c.State != "up" {
		t.Fatalf("the far end's call through the backup proxy: %+v, want it up", c)
	}
	call, err := p.line.Dial("1002")
	if err != nil {
		t.Fatal(err)
	}
	p.clock.Advance(time.Second)
	var invite *runtimetest.SimRequest
	for _, r := range p.network.Requests(p.backup) {
		if r.Method == "INVITE" {
			invite = &r
		}
	}
	if invite == nil {
		t.Fatal("no INVITE reached the backup proxy")
	}
	if got, want := invite.Request.Recipient.String(), "sip:1002@registrar.example.com"; got != want {
		t.Errorf("INVITE to %s, want %s", got, want)
	}
	if want := []string{"<sip:192.0.2.2:5060;transport=tcp;lr>"}; !slices.Equal(invite.Route, want) {
		t.Errorf("INVITE Route %q, want %q", invite.Route, want)
	}
	if call.Info().State != "confirmed" {
		t.Errorf("the line's call is %s, want confirmed", call.Info().State)
	}
}

func farCall(n *runtimetest.SimNetwork, id string) *runtimetest.SimCall {
	for _, c := range n.Calls() {
		if c.CallID == id {
			return &c
		}
	}
	return nil
}

// TestOutboundProxiesOverTLS: R22 over TLS on loopback, with real
// certificates. Each REGISTER goes to the proxy in a TLS stream checked
// against the proxy's name, with the proxy as a pre-loaded TLS Route and
// the registrar (over TLS too) as its Request-URI; the primary proxy
// stops, the reset ends its stream, and the line registers through the
// backup proxy at once.
func TestOutboundProxiesOverTLS(t *testing.T) {
	t.Parallel()
	b := newBench(t, "tls", func(c *settings.LineConfig) {
		c.OutboundProxies = c.Servers
		c.Servers = []settings.ServerConfig{{Addr: "registrar.example.test", Port: new(5061), Transport: new(settings.TransportTLS)}}
		c.NATKeepaliveInterval = new(settings.Duration(0))
	})
	b.line.Register()
	b.waitState("primary_registered", 3*time.Second)
	check := func(r *runtimetest.Registrar) {
		t.Helper()
		seen := r.Seen()
		if len(seen) == 0 {
			t.Fatalf("%s saw nothing", r.Name)
		}
		s := seen[len(seen)-1]
		want := []string{fmt.Sprintf("<sip:127.0.0.1:%d;transport=tls;lr>", r.Port())}
		if s.Method != "REGISTER" || s.RequestURI != "sip:registrar.example.test:5061;transport=tls" || !slices.Equal(s.Route, want) {
			t.Errorf("%s saw %s %s with Route %q; want REGISTER to the registrar, Route %q", r.Name, s.Method, s.RequestURI, s.Route, want)
		}
	}
	check(b.primary)
	b.primary.Stop()
	took := b.waitState("backup_registered", 5*time.Second)
	check(b.backup)
	t.Logf("registered through the backup proxy %v after the primary proxy stopped", took.Round(time.Millisecond))
}
