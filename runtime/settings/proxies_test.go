package settings_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sipfailover/sipfailover/runtime/settings"
)

// TestOutboundProxies: a line behind proxies has its registrars in servers
// and 1 to 4 proxies; its hops are the proxies, each asking the
// registrar's TTL, and the model sees as many servers as proxies and as
// many registrars as servers.
func TestOutboundProxies(t *testing.T) {
	c, err := settings.Parse([]byte(`lines:
  - user: "1001"
    servers: [{addr: registrar.example.com, port: 5090, ttl: 120}]
    outbound_proxies:
      - {addr: 192.0.2.1}
      - {addr: 192.0.2.2, port: 5070, transport: 1}
`))
	if err != nil {
		t.Fatal(err)
	}
	l := c.Lines[0].Defaults()
	hops := l.Hops()
	var got []string
	for _, h := range hops {
		got = append(got, h.Addr+":"+itoa(*h.Port)+"/"+itoa(*h.Transport)+" ttl "+itoa(*h.TTL))
	}
	if want := []string{"192.0.2.1:5060/0 ttl 120", "192.0.2.2:5070/1 ttl 120"}; !slices.Equal(got, want) {
		t.Errorf("hops %v, want %v", got, want)
	}
	if l.OutboundProxies[0].TTL != nil {
		t.Error("Hops wrote the TTL into the proxies themselves")
	}
	if p := l.LineParams(); p.ServerCount != 2 || p.RegistrarCount != 1 || !p.Proxied || p.ContactShared {
		t.Errorf("server_count %d, registrar_count %d, proxied %v, contact_shared %v: want the proxies' 2, one registrar, proxied, and not shared (a TCP proxy)",
			p.ServerCount, p.RegistrarCount, p.Proxied, p.ContactShared)
	}
	if !l.Proxied() || (settings.LineConfig{}).Proxied() {
		t.Error("Proxied wrong")
	}
	plain := settings.LineConfig{Servers: []settings.ServerConfig{{Addr: "a"}, {Addr: "b"}}}.Defaults()
	if h := plain.Hops(); len(h) != 2 || h[1].Addr != "b" {
		t.Errorf("without proxies the hops are the servers: %+v", h)
	}
	if p := plain.LineParams(); p.ServerCount != 2 || p.RegistrarCount != 1 || p.Proxied {
		t.Errorf("without proxies: server_count %d, registrar_count %d, proxied %v; want 2, 1, false", p.ServerCount, p.RegistrarCount, p.Proxied)
	}
}

// TestOutboundProxyLimits: every limit of the proxies at both edges, each
// reported at its field.
func TestOutboundProxyLimits(t *testing.T) {
	line := func(servers, proxies, extra string) string {
		return "lines:\n- user: a\n  servers: " + servers + "\n  outbound_proxies: " + proxies + "\n" + extra
	}
	one := "[{addr: 127.0.0.1, port: 5090}]"
	four := "[{addr: 127.0.0.2}, {addr: 127.0.0.3}, {addr: 127.0.0.4}, {addr: 127.0.0.5}]"
	registrars := "[{addr: 127.0.0.11, ttl: 60}, {addr: 127.0.0.12}, {addr: registrar.example.com, port: 0}, {addr: 127.0.0.14, transport: 1}]"
	for _, ok := range []string{
		line(one, "[{addr: 127.0.0.2}]", ""),
		line(one, four, ""),
		line(one, "[{addr: 127.0.0.2, port: 1}, {addr: proxy.example.com, port: 0}]", ""),
		line(one, "[{addr: 127.0.0.2, port: 65535, transport: 3}]", "  deregister_backup_after_failback: 0\n"),
		line(one, "[{addr: 127.0.0.2}, {addr: 127.0.0.3}]", "  outbound: true\n  registration_mode: concurrent\n"),
		line(registrars, four, "  domain: example.com\n"),
		line("[{addr: 127.0.0.11}, {addr: 127.0.0.12}]", "[{addr: 127.0.0.2}]", "  domain: example.com\n  deregister_backup_after_failback: 1\n"),
	} {
		if _, err := settings.Parse([]byte(ok)); err != nil {
			t.Errorf("refused:\n%s%v", ok, err)
		}
	}
	for _, tc := range []struct{ src, want string }{
		{line(one, "[{addr: 127.0.0.2}, {addr: 127.0.0.3}, {addr: 127.0.0.4}, {addr: 127.0.0.5}, {addr: 127.0.0.6}]", ""), "4:21: lines[0].outbound_proxies: 5 proxies; a line has 1 to 4"},
		{line("[{addr: 127.0.0.1}, {addr: 127.0.0.9}]", "[{addr: 127.0.0.2}]", ""), "2:3: lines[0].domain: empty: behind outbound_proxies with 2 registrars"},
		{line("[{addr: 127.0.0.1}, {addr: 127.0.0.9}]", "[{addr: 127.0.0.2}, {addr: 127.0.0.3}]", "  domain: example.com\n  outbound: true\n  registration_mode: concurrent\n"),
			"3:12: lines[0].servers: 2 servers: RFC 5626 flows register through every proxy at once to one registrar"},
		{line("[{addr: 127.0.0.1}, {addr: 127.0.0.9}, {addr: 127.0.0.10}, {addr: 127.0.0.11}, {addr: 127.0.0.12}]", "[{addr: 127.0.0.2}]", "  domain: example.com\n"),
			"3:12: lines[0].servers: 5 servers; behind outbound_proxies a line has 1 to 4"},
		{line("[]", "[{addr: 127.0.0.2}]", ""), "lines[0].servers: 0 servers; behind outbound_proxies a line has 1 to 4"},
		{line("[{addr: 127.0.0.1}, {addr: 127.0.0.9, register_on_enable: 0}]", "[{addr: 127.0.0.2}]", "  domain: example.com\n"), "lines[0].servers[1].register_on_enable: 0: behind outbound_proxies"},
		{line(one, "[{addr: 127.0.0.2, port: 65536}]", ""), "4:46: lines[0].outbound_proxies[0].port: 65536 is outside 0-65535"},
		{line(one, "[{addr: 127.0.0.2, port: -1}]", ""), "lines[0].outbound_proxies[0].port: -1 is outside 0-65535"},
		{line(one, "[{addr: \"\"}]", ""), "4:29: lines[0].outbound_proxies[0].addr: empty"},
		{line(one, "[{addr: 127.0.0.2, transport: 4}]", ""), "lines[0].outbound_proxies[0].transport: 4 is not 0 (UDP)"},
		{line(one, "[{addr: 127.0.0.2, ttl: 60}]", ""), "4:45: lines[0].outbound_proxies[0].ttl: a proxy holds no registration"},
		{line(one, "[{addr: 127.0.0.2}]", "  registration_mode: concurrent\n"), "lines[0].registration_mode: concurrent: registering through every proxy at once"},
		{line(one, "[{addr: 127.0.0.2}]", "  deregister_backup_after_failback: 1\n"), "lines[0].deregister_backup_after_failback: 1: the proxies lead to one registrar"},
		{line(one, "[]", ""), "3:12: lines[0].servers: 1 servers; a line has 2 to 4"},
		{line(one, "[{addr: 127.0.0.2}]", "  outbound: true\n"), "lines[0].outbound: true: outbound keeps a registration through every proxy at once; set registration_mode: concurrent"},
		{line("[{addr: 127.0.0.1}, {addr: 127.0.0.9}]", "[]", "  outbound: true\n"), "lines[0].outbound: true: RFC 5626 flows run through outbound proxies; give outbound_proxies"},
		{line(one, "[{addr: 127.0.0.2}]", "  failback_mode: dns_ttl\n"), "outbound_proxies[0].addr 127.0.0.2 is an address, which has none"},
	} {
		_, err := settings.Parse([]byte(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.src, err, tc.want)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
