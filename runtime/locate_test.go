package runtime_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/runtimetest"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
)

// zone returns a zone of records; the test fails on a bad one.
func zone(t testing.TB, records ...string) *runtimetest.Zone {
	t.Helper()
	z, err := runtimetest.NewZone(records...)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func server(addr string, port, transport int) settings.ServerConfig {
	return settings.ServerConfig{Addr: addr, Port: &port, Transport: &transport}
}

func targetsOf(ts []runtime.Target) []string {
	var out []string
	for _, t := range ts {
		s := t.String()
		if t.SRV != "" {
			s += " via " + t.SRV
		}
		out = append(out, s)
	}
	return out
}

// TestLocateOrder: R20, RFC 3263's order of lookups for each way a server
// can be given, and the order of the targets it yields.
func TestLocateOrder(t *testing.T) {
	records := []string{
		`example.test. 300 IN NAPTR 20 10 "s" "SIP+D2U" "" _sip._udp.example.test.`,
		`example.test. 300 IN NAPTR 10 10 "s" "SIP+D2T" "" _sip._tcp.example.test.`,
		`example.test. 300 IN NAPTR 5 10 "s" "SIP+D2X" "" _sip._sctp.example.test.`,
		`example.test. 300 IN NAPTR 15 10 "u" "SIP+D2U" "!^.*$!sip:x@y!" .`,
		"_sip._tcp.example.test. 120 IN SRV 20 0 5080 pbx2.example.test.",
		"_sip._tcp.example.test. 120 IN SRV 10 0 5070 pbx1.example.test.",
		"_sip._udp.example.test. 300 IN SRV 5 0 5090 pbx3.example.test.",
		"pbx1.example.test. 60 IN A 127.0.0.11",
		"pbx2.example.test. 300 IN AAAA ::1",
		"pbx2.example.test. 300 IN A 127.0.0.12",
		"pbx3.example.test. 300 IN A 127.0.0.13",
		"tls.test. 300 IN A 127.0.0.20",
		"_sips._tcp.tls.test. 300 IN SRV 0 0 5161 pbx1.example.test.",
		"plain.test. 45 IN A 127.0.0.30",
		"plain.test. 300 IN AAAA ::1",
		"gone.test. 300 IN A 127.0.0.40",
		"_sip._udp.gone.test. 300 IN SRV 0 0 0 .",
		// Broken records: a target on port 0, addresses no server has.
		"_sip._udp.broken.test. 300 IN SRV 0 0 0 pbx1.example.test.",
		"_sip._udp.broken.test. 300 IN SRV 1 0 5060 zero.test.",
		"_sip._udp.broken.test. 300 IN SRV 2 0 5060 pbx3.example.test.",
		"zero.test. 300 IN A 0.0.0.0",
		"zero.test. 300 IN AAAA ff02::1",
	}
	for _, tt := range []struct {
		name    string
		server  settings.ServerConfig
		want    []string
		ttl     time.Duration
		asked   []string // the questions, in order
		wantErr string
	}{
		{"NAPTR, then SRV by priority, then A before AAAA", server("example.test", 0, settings.TransportAuto),
			[]string{"TCP 127.0.0.11:5070 via pbx1.example.test:5070", "TCP 127.0.0.12:5080 via pbx2.example.test:5080",
				"TCP [::1]:5080 via pbx2.example.test:5080", "UDP 127.0.0.13:5090 via pbx3.example.test:5090"},
			60 * time.Second,
			[]string{"NAPTR example.test", "SRV _sip._tcp.example.test", "A pbx1.example.test", "AAAA pbx1.example.test",
				"A pbx2.example.test", "AAAA pbx2.example.test", "SRV _sip._udp.example.test", "A pbx3.example.test", "AAAA pbx3.example.test"}, ""},
		{"no NAPTR: every SRV service, UDP first", server("tls.test", 0, settings.TransportAuto),
			[]string{"TLS 127.0.0.11:5161 via pbx1.example.test:5161"}, 60 * time.Second,
			[]string{"NAPTR tls.test", "SRV _sip._udp.tls.test", "SRV _sip._tcp.tls.test", "SRV _sips._tcp.tls.test", "A pbx1.example.test", "AAAA pbx1.example.test"}, ""},
		{"a transport: its SRV only", server("example.test", 0, settings.TransportTCP),
			[]string{"TCP 127.0.0.11:5070 via pbx1.example.test:5070", "TCP 127.0.0.12:5080 via pbx2.example.test:5080",
				"TCP [::1]:5080 via pbx2.example.test:5080"}, 60 * time.Second,
			[]string{"SRV _sip._tcp.example.test", "A pbx1.example.test", "AAAA pbx1.example.test", "A pbx2.example.test", "AAAA pbx2.example.test"}, ""},
		{"a port: the name's addresses, no SRV", server("plain.test", 5062, settings.TransportUDP),
			[]string{"UDP 127.0.0.30:5062", "UDP [::1]:5062"}, 45 * time.Second,
			[]string{"A plain.test", "AAAA plain.test"}, ""},
		{"no SRV records: the name on the default port", server("plain.test", 0, settings.TransportTLS),
			[]string{"TLS 127.0.0.30:5061", "TLS [::1]:5061"}, 45 * time.Second,
			[]string{"SRV _sips._tcp.plain.test", "A plain.test", "AAAA plain.test"}, ""},
		{"an address: no lookup", server("127.0.0.9", 0, settings.TransportUDP),
			[]string{"UDP 127.0.0.9:5060"}, 24 * time.Hour, nil, ""},
		{"SRV target .: no service", server("gone.test", 0, settings.TransportUDP), nil, 0,
			[]string{"SRV _sip._udp.gone.test"}, `every SRV target is "."`},
		{"broken records are no targets", server("broken.test", 0, settings.TransportUDP),
			[]string{"UDP 127.0.0.13:5060 via pbx3.example.test:5060"}, 300 * time.Second,
			[]string{"SRV _sip._udp.broken.test", "A zero.test", "AAAA zero.test", "A pbx3.example.test", "AAAA pbx3.example.test"}, ""},
		{"no such name", server("nowhere.test", 5060, settings.TransportUDP), nil, 0,
			[]string{"A nowhere.test", "AAAA nowhere.test"}, "nowhere.test has no address"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			z := zone(t, records...)
			a := runtime.NewAgent(runtimetest.NewSimNetwork(runtimetest.NewVirtualClock(time.Unix(0, 0)), time.Millisecond),
				runtime.WithResolver(z), runtime.WithSeed(1))
			ts, ttl, err := a.Locate(context.Background(), tt.server)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one saying %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if got := targetsOf(ts); !slices.Equal(got, tt.want) {
				t.Errorf("targets\n got %q\nwant %q", got, tt.want)
			}
			if err == nil && ttl != tt.ttl {
				t.Errorf("ttl %v, want %v (the shortest of the records used)", ttl, tt.ttl)
			}
			var asked []string
			for _, q := range z.Queries() {
				asked = append(asked, dns.TypeToString[q.Qtype]+" "+strings.TrimSuffix(q.Name, "."))
			}
			if !slices.Equal(asked, tt.asked) {
				t.Errorf("questions\n got %q\nwant %q", asked, tt.asked)
			}
		})
	}
}

// TestLocateFailures: R20, a lookup that fails names the question and the
// resolver's reason.
func TestLocateFailures(t *testing.T) {
	z := zone(t, "_sip._udp.example.test. 60 IN SRV 0 0 5060 pbx.example.test.", "pbx.example.test. 60 IN A 127.0.0.1")
	a := runtime.NewAgent(runtimetest.NewSimNetwork(runtimetest.NewVirtualClock(time.Unix(0, 0)), time.Millisecond), runtime.WithResolver(z))
	z.Fail("_sip._udp.example.test", dns.RcodeServerFailure)
	if _, _, err := a.Locate(context.Background(), server("example.test", 0, settings.TransportUDP)); err == nil ||
		!strings.Contains(err.Error(), "SRV _sip._udp.example.test: SERVFAIL") {
		t.Errorf("SERVFAIL: err %v", err)
	}
	z.Fail("_sip._udp.example.test", 0)
	z.Fail("pbx.example.test", dns.RcodeRefused)
	if _, _, err := a.Locate(context.Background(), server("example.test", 0, settings.TransportUDP)); err == nil ||
		!strings.Contains(err.Error(), "A pbx.example.test: REFUSED") {
		t.Errorf("REFUSED: err %v", err)
	}
	z.Fail("pbx.example.test", 0)
	z.Silence("pbx.example.test", true)
	if _, _, err := a.Locate(context.Background(), server("example.test", 0, settings.TransportUDP)); err == nil ||
		!strings.Contains(err.Error(), "timeout") {
		t.Errorf("silent: err %v", err)
	}
}

// TestSRVWeights: RFC 2782, within a priority the first target is drawn
// with probability weight/(sum+1) (weight 0 only on a draw of 0), and the
// draws come from the agent's seed: the same seed gives the same orders.
func TestSRVWeights(t *testing.T) {
	z := zone(t,
		"_sip._udp.example.test. 60 IN SRV 10 0 5060 zero.example.test.",
		"_sip._udp.example.test. 60 IN SRV 10 10 5060 light.example.test.",
		"_sip._udp.example.test. 60 IN SRV 10 30 5060 heavy.example.test.",
		"_sip._udp.example.test. 60 IN SRV 20 90 5060 later.example.test.",
		"zero.example.test. 60 IN A 127.0.0.1", "light.example.test. 60 IN A 127.0.0.2",
		"heavy.example.test. 60 IN A 127.0.0.3", "later.example.test. 60 IN A 127.0.0.4")
	orders := func(seed uint64, n int) [][]string {
		a := runtime.NewAgent(runtimetest.NewSimNetwork(runtimetest.NewVirtualClock(time.Unix(0, 0)), time.Millisecond),
			runtime.WithResolver(z), runtime.WithSeed(seed))
		var out [][]string
		for range n {
			ts, _, err := a.Locate(context.Background(), server("example.test", 0, settings.TransportUDP))
			if err != nil {
				t.Fatal(err)
			}
			var hosts []string
			for _, x := range ts {
				hosts = append(hosts, strings.Split(x.SRV, ".")[0])
			}
			out = append(out, hosts)
		}
		return out
	}
	const n = 4100
	got := orders(7, n)
	first := map[string]int{}
	for _, o := range got {
		if len(o) != 4 || o[3] != "later" {
			t.Fatalf("order %v: the priority-20 target must come last", o)
		}
		first[o[0]]++
	}
	// Draws are uniform on 0..40: zero wins on 0, light on 1..10, heavy on 11..40.
	for name, want := range map[string]float64{"zero": 1.0 / 41, "light": 10.0 / 41, "heavy": 30.0 / 41} {
		if share := float64(first[name]) / n; share < want-0.03 || share > want+0.03 {
			t.Errorf("%s first in %.3f of the orders, want %.3f", name, share, want)
		}
	}
	if again := orders(7, 50); !slices.EqualFunc(again, got[:50], slices.Equal) {
		t.Error("the same seed gave other orders")
	}
}

// dnsLine is a line on real loopback sockets whose primary is a domain
// name that a DNS server on loopback locates.
type dnsLine struct {
	*bench
	zone *runtimetest.Zone
}

// newDNSLine starts registrars p1 and p2 (the primary name's SRV targets,
// p1 first) and the backup, a DNS server for the zone, and a line whose
// primary is example.test (port 0: SRV) and whose backup is an address.
func newDNSLine(t *testing.T, network, host string, tweak func(*settings.LineConfig)) (*dnsLine, *runtimetest.Registrar, *runtimetest.Registrar) {
	t.Helper()
	if host == "::1" {
		if c, err := net.ListenPacket("udp", "[::1]:0"); err != nil {
			t.Skip("no IPv6 loopback here:", err)
		} else {
			c.Close()
		}
	}
	loc := runtimetest.NewLocation()
	var regs []*runtimetest.Registrar
	for _, name := range []string{"p1", "p2", "backup"} {
		r := &runtimetest.Registrar{Name: name, Network: network, User: "1001", Password: "secret", Location: loc,
			Addr: net.JoinHostPort(host, "0")}
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Stop)
		regs = append(regs, r)
	}
	rr := "A"
	if host == "::1" {
		rr = "AAAA"
	}
	service := map[string]string{"udp": "_sip._udp", "tcp": "_sip._tcp"}[network]
	z := zone(t,
		fmt.Sprintf("%s.example.test. 60 IN SRV 10 0 %d p1.example.test.", service, regs[0].Port()),
		fmt.Sprintf("%s.example.test. 60 IN SRV 20 0 %d p2.example.test.", service, regs[1].Port()),
		fmt.Sprintf("p1.example.test. 60 IN %s %s", rr, host),
		fmt.Sprintf("p2.example.test. 60 IN %s %s", rr, host))
	addr, stop, err := z.Serve(net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	transport := map[string]int{"udp": settings.TransportUDP, "tcp": settings.TransportTCP}[network]
	b := newBenchWith(t, nil, []settings.ServerConfig{
		server("example.test", 0, transport),
		server(host, regs[2].Port(), transport),
	}, tweak, runtime.WithResolver(runtime.NewDNSResolver([]string{addr})))
	b.primary, b.backup = regs[0], regs[2]
	return &dnsLine{bench: b, zone: z}, regs[0], regs[1]
}

// TestFailoverAcrossSRVTargets: R20, the line tries the primary name's SRV
// targets in priority order before the backup, and fails back to the
// first target when it returns; the status names the server, the target
// and the address.
func TestFailoverAcrossSRVTargets(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			d, p1, p2 := newDNSLine(t, network, "127.0.0.1", func(c *settings.LineConfig) { c.FailbackInterval = new(1) })
			d.line.Register()
			d.waitState("primary_registered", 5*time.Second)
			st := d.line.Status()
			if want := fmt.Sprintf("p1.example.test:%d", p1.Port()); st.Target != want || st.Server != 1 ||
				!strings.HasPrefix(st.ServerName, "example.test (SRV") || !strings.HasSuffix(st.ServerAddr, fmt.Sprint(p1.Port())) {
				t.Fatalf("status %+v, want target %s", st, want)
			}
			p1.Stop()
			d.line.Register() // a new round, from the first target
			d.waitState("backup_registered", 5*time.Second)
			st = d.line.Status()
			if want := fmt.Sprintf("p2.example.test:%d", p2.Port()); st.Target != want || st.Server != 2 {
				t.Fatalf("after p1 stopped: status %+v, want the primary name's second target %s, before the backup", st, want)
			}
			if count(d.backup, "REGISTER") != 0 {
				t.Error("the backup was tried while a target of the primary name was up")
			}
			if err := p1.Start(); err != nil {
				t.Fatal(err)
			}
			d.waitState("primary_registered", 5*time.Second)
			if st := d.line.Status(); st.Target != fmt.Sprintf("p1.example.test:%d", p1.Port()) {
				t.Errorf("after failback: status %+v, want the first target", st)
			}
		})
	}
}

// TestLocateOverIPv6: R20, a name whose records are AAAA only, served by
// a DNS server on ::1, registers over UDP and TCP on ::1.
func TestLocateOverIPv6(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			d, p1, _ := newDNSLine(t, network, "::1", nil)
			d.line.Register()
			d.waitState("primary_registered", 5*time.Second)
			if st := d.line.Status(); st.ServerAddr != fmt.Sprintf("%s [::1]:%d", strings.ToUpper(network), p1.Port()) {
				t.Errorf("status %+v, want the registration on [::1]", st)
			}
			if !p1.Registered() {
				t.Error("the registrar on ::1 holds no binding")
			}
		})
	}
}

// TestLookupFailureIsServerFailure: R20, a name the resolver cannot
// locate is an unavailable server with the resolver's reason: the line
// goes on to the backup.
func TestLookupFailureIsServerFailure(t *testing.T) {
	d, _, _ := newDNSLine(t, "udp", "127.0.0.1", nil)
	d.zone.Fail("_sip._udp.example.test", dns.RcodeServerFailure)
	d.line.Register()
	d.waitState("backup_registered", 5*time.Second)
	ev := d.event("lookup.failed")
	if !strings.Contains(ev.Reason, "SERVFAIL") || !strings.Contains(ev.Reason, "_sip._udp.example.test") {
		t.Errorf("reason %q, want the resolver's SERVFAIL for the SRV question", ev.Reason)
	}
}

// TestSilentResolverCostsOneBudget: R3, R20, a resolver that never
// answers holds the line no longer than the server's budget; the reason
// says the DNS answer is missing.
func TestSilentResolverCostsOneBudget(t *testing.T) {
	d, _, _ := newDNSLine(t, "udp", "127.0.0.1", nil)
	d.zone.Silence("_sip._udp.example.test", true)
	d.line.Register()
	d.waitState("backup_registered", 10*time.Second)
	ev := d.event("timer.budget")
	if !strings.Contains(ev.Reason, "no DNS answer for example.test") {
		t.Errorf("reason %q, want the missing DNS answer", ev.Reason)
	}
}

// TestDNSSettings: the dns block takes IP addresses with optional ports
// and names each bad entry.
func TestDNSSettings(t *testing.T) {
	src := `dns:
  servers: ["127.0.0.1:5353", "[::1]", "10.0.0.1", dns.example.com, "127.0.0.1:0"]
lines:
- user: a
  servers: [{addr: sip.example.test, port: 0}, {addr: sip.example.test, transport: 2}]
`
	_, err := settings.Parse([]byte(src))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{`2:52: dns.servers[3]: "dns.example.com" is not an IP address`, `2:69: dns.servers[4]: "127.0.0.1:0": port 0`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nwant %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "servers[0]") || strings.Contains(err.Error(), "servers[1]") || strings.Contains(err.Error(), "servers[2]") {
		t.Errorf("good entries refused: %v", err)
	}
	if strings.Contains(err.Error(), "line 1") {
		t.Errorf("a name with port 0 or transport 2 refused: %v", err)
	}
}

// TestOneNameLine: R20, a line may have one server when it is a domain
// name looked up in DNS SRV (its targets are primary and backups); one
// address, or one name with a port, is still refused.
func TestOneNameLine(t *testing.T) {
	for src, ok := range map[string]bool{
		"lines:\n- user: a\n  servers: [{addr: sip.example.test, port: 0}]\n":                true,
		"lines:\n- user: a\n  servers: [{addr: sip.example.test, transport: 2}]\n":           true,
		"lines:\n- user: a\n  servers: [{addr: 127.0.0.1, port: 0}]\n":                       false,
		"lines:\n- user: a\n  servers: [{addr: sip.example.test, port: 5060}]\n":             false,
		"lines:\n- user: a\n  servers: [{addr: sip.example.test}]\n":                         false,
		"lines:\n- user: a\n  servers: [{addr: a.test, port: 0}, {addr: b.test, port: 0}]\n": true,
	} {
		_, err := settings.Parse([]byte(src))
		if (err == nil) != ok {
			t.Errorf("%q: err %v, want accepted=%v", src, err, ok)
		}
		if err != nil && !strings.Contains(err.Error(), "or one domain name with port 0") {
			t.Errorf("%q: %v does not say what would do", src, err)
		}
	}
}

// TestTTLExpiryOverTheWire: R20, with a DNS server on loopback and the
// agent on a virtual clock, an answer is looked up again (off the line's
// path, on a goroutine of the locator) when its TTL ends, and the next
// round takes the new records.
func TestTTLExpiryOverTheWire(t *testing.T) {
	clock := runtimetest.NewVirtualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	simnet := runtimetest.NewSimNetwork(clock, 10*time.Millisecond)
	a, b, backup := transport.Endpoint{Host: "127.0.3.1", Port: 5060}, transport.Endpoint{Host: "127.0.3.2", Port: 5060}, transport.Endpoint{Host: "127.0.3.3", Port: 5060}
	for _, e := range []transport.Endpoint{a, b, backup} {
		simnet.Add(&runtimetest.SimServer{Endpoint: e})
	}
	records := func(host string) []string {
		return []string{"_sip._udp.example.test. 30 IN SRV 10 0 5060 pbx.example.test.", "pbx.example.test. 30 IN A " + host}
	}
	z := zone(t, records(a.Host)...)
	addr, stop, err := z.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	agent := runtime.NewAgent(simnet, runtime.WithClock(clock), runtime.WithResolver(runtime.NewDNSResolver([]string{addr})))
	line, err := agent.AddLine(settings.LineConfig{Name: "ttl", User: "1001", Servers: []settings.ServerConfig{
		server("example.test", 0, settings.TransportUDP), server(backup.Host, 5060, settings.TransportUDP)}})
	if err != nil {
		t.Fatal(err)
	}
	// Lookups answer on the wall clock; the line's time stands still
	// meanwhile, then moves in steps until cond holds.
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10s; status %+v", what, line.Status())
			}
			time.Sleep(time.Millisecond)
			clock.Advance(5 * time.Millisecond)
		}
	}
	line.Register()
	waitFor("registered on the first answer's target", func() bool { return line.Status().ServerAddr == a.String() })
	asked := len(z.Queries())
	if err := z.Set(records(b.Host)...); err != nil {
		t.Fatal(err)
	}
	clock.Advance(29 * time.Second)
	time.Sleep(50 * time.Millisecond)
	if n := len(z.Queries()); n != asked {
		t.Fatalf("%d questions before the TTL ended", n-asked)
	}
	clock.Advance(time.Second)
	waitFor("looked up again when the TTL ended", func() bool { return len(z.Queries()) > asked })
	if st := line.Status(); st.ServerAddr != a.String() {
		t.Fatalf("the registration moved with the records: %+v", st)
	}
	// The zone has answered; the locator stores the answer a moment later,
	// and a round begun after that takes it.
	waitFor("a round on the new target", func() bool {
		if st := line.Status(); st.State == "primary_registered" && st.ServerAddr == b.String() {
			return true
		}
		line.Register()
		clock.Advance(50 * time.Millisecond)
		return false
	})
}

// TestLargeSRVAnswerIsBounded: an SRV answer listing 500 targets made the
// line ask A and AAAA for every one, 1,001 questions a lookup, again at
// each TTL's end. A line uses at most 8 places: the lookup takes the first
// 8 targets in RFC 2782 order and asks for their addresses only.
func TestLargeSRVAnswerIsBounded(t *testing.T) {
	records := []string{}
	for i := range 500 {
		records = append(records,
			fmt.Sprintf("_sip._udp.big.test. 0 IN SRV %d 0 5060 t%d.big.test.", i, i),
			fmt.Sprintf("t%d.big.test. 0 IN A 127.0.%d.%d", i, 1+i/250, 1+i%250))
	}
	z := zone(t, records...)
	a := runtime.NewAgent(runtimetest.NewSimNetwork(runtimetest.NewVirtualClock(time.Unix(0, 0)), time.Millisecond), runtime.WithResolver(z))
	ts, _, err := a.Locate(context.Background(), server("big.test", 0, settings.TransportUDP))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 8 {
		want = append(want, fmt.Sprintf("UDP 127.0.1.%d:5060 via t%d.big.test:5060", 1+i, i))
	}
	if got := targetsOf(ts); !slices.Equal(got, want) {
		t.Errorf("targets %v, want %v", got, want)
	}
	if n := len(z.Queries()); n > 1+2*8 {
		t.Errorf("%d questions for one lookup, want at most %d (the SRV, then A and AAAA of 8 targets)", n, 1+2*8)
	}
}

// fuzzResolver answers every question with the records of one message a
// fuzzer wrote, as a hostile DNS server may, and counts the questions.
type fuzzResolver struct {
	answer *dns.Msg
	asked  int
}

func (r *fuzzResolver) Exchange(_ context.Context, q *dns.Msg) (*dns.Msg, error) {
	r.asked++
	m := r.answer.Copy()
	m.Id, m.Response, m.Question = q.Id, true, q.Question
	return m, nil
}

func (r *fuzzResolver) Instant() {}

// FuzzLocateAnswer: whatever records a DNS server answers with (any
// types, names, counts and TTLs), a lookup ends without a panic, takes at
// most 8 targets, and asks a bounded number of questions: a NAPTR, three
// SRV names, the addresses of 16 SRV targets, and the name's own.
func FuzzLocateAnswer(f *testing.F) {
	seed := func(records ...string) {
		m := new(dns.Msg)
		for _, s := range records {
			rr, err := dns.NewRR(s)
			if err != nil {
				f.Fatal(err)
			}
			m.Answer = append(m.Answer, rr)
		}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(`big.test. 0 IN NAPTR 10 10 "s" "SIP+D2U" "" _sip._udp.big.test.`, "_sip._udp.big.test. 0 IN SRV 0 0 5060 big.test.", "big.test. 0 IN A 127.0.0.1")
	var many []string
	for i := range 300 {
		many = append(many, fmt.Sprintf("_sip._udp.big.test. 0 IN SRV %d %d 5060 t%d.big.test.", i%3, i, i))
	}
	seed(many...)
	seed("big.test. 0 IN CNAME big.test.", "big.test. 0 IN AAAA ff02::1", "big.test. 0 IN A 0.0.0.0")
	f.Fuzz(func(t *testing.T, b []byte) {
		m := new(dns.Msg)
		if m.Unpack(b) != nil {
			return
		}
		r := &fuzzResolver{answer: m}
		a := runtime.NewAgent(runtimetest.NewSimNetwork(runtimetest.NewVirtualClock(time.Unix(0, 0)), time.Millisecond), runtime.WithResolver(r))
		ts, _, _ := a.Locate(context.Background(), server("big.test", 0, settings.TransportAuto))
		if len(ts) > 8 {
			t.Errorf("%d targets, want at most 8", len(ts))
		}
		if r.asked > 1+3+2*16+2 {
			t.Errorf("%d questions for one lookup", r.asked)
		}
	})
}

// timedZone is a zone that answers at once but is no InstantResolver: the
// agent paces its questions to it as to a DNS server. It notes when each
// question came.
type timedZone struct {
	z  *runtimetest.Zone
	mu sync.Mutex
	at []time.Time
}

func (r *timedZone) Exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	r.mu.Lock()
	r.at = append(r.at, time.Now())
	r.mu.Unlock()
	return r.z.Exchange(ctx, q)
}

// TestQuestionsArePaced: names looked up together come to the resolver
// 100 questions at once, then 100 a second: eight names of 500 SRV targets
// each, 17 questions a lookup, take more than a third of a second where
// they took none. (A busy machine only makes it slower.)
func TestQuestionsArePaced(t *testing.T) {
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	var records []string
	for _, name := range names {
		for i := range 500 {
			records = append(records,
				fmt.Sprintf("_sip._udp.%s.test. 60 IN SRV %d 0 5060 t%d.%s.test.", name, i, i, name),
				fmt.Sprintf("t%d.%s.test. 60 IN A 127.0.1.%d", i, name, 1+i%250))
		}
	}
	r := &timedZone{z: zone(t, records...)}
	a := runtime.NewAgent(runtimetest.NewSimNetwork(runtimetest.NewVirtualClock(time.Unix(0, 0)), time.Millisecond), runtime.WithResolver(r))
	for _, name := range names {
		if _, _, err := a.Locate(context.Background(), server(name+".test", 0, settings.TransportUDP)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(r.at); n != len(names)*17 {
		t.Fatalf("%d questions, want %d", n, len(names)*17)
	}
	// 100 at once, then 36 at 100 a second: the last 360 ms after the first.
	if took := r.at[len(r.at)-1].Sub(r.at[0]); took < 300*time.Millisecond {
		t.Errorf("%d questions in %v: not paced", len(r.at), took)
	}
}
