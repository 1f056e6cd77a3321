package web

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/sipfailover/sipfailover/runtime"
)

// errBeside says whether the page shows msg beside the named field.
func errBeside(body, field, msg string) bool {
	return regexp.MustCompile(`<span class="err" id="` + field + `-error">[^<]*` + regexp.QuoteMeta(html.EscapeString(msg))).MatchString(body)
}

// proxiedForm is goodForm for a line behind two outbound proxies (R22):
// SIP Server 1 is the registrar, SIP Server 2 is left empty.
func proxiedForm(csrf string) url.Values {
	form := goodForm(csrf)
	for _, k := range []string{"server2_addr", "server2_port", "server2_ttl", "server2_transport"} {
		form.Set(k, "")
	}
	form.Set("proxy1_addr", "10.0.0.11")
	form.Set("proxy1_port", "5060")
	form.Set("proxy1_transport", "0")
	form.Set("proxy2_addr", "sbc2.example.com")
	form.Set("proxy2_port", "5070")
	form.Set("proxy2_transport", "1")
	return form
}

// TestOutboundProxiesThroughTheForm: the Line page's Outbound Proxy 1 and
// 2 make the line's outbound proxies, its emptied backup goes, and the page
// shows them back; emptying both proxy addresses removes them.
func TestOutboundProxiesThroughTheForm(t *testing.T) {
	ts := newTestSite(t)
	csrf := ts.login(t)
	if res, body := ts.post(t, "/line", proxiedForm(csrf)); res.StatusCode != http.StatusOK || len(ts.applied) != 1 {
		t.Fatalf("submit: %d, applied %d\n%s", res.StatusCode, len(ts.applied), body)
	}
	l := ts.applied[0].Lines[0]
	if len(l.Servers) != 1 || l.Servers[0].Addr != "10.0.0.1" {
		t.Fatalf("servers %+v, want the registrar alone", l.Servers)
	}
	px := l.OutboundProxies
	if len(px) != 2 || px[0].Addr != "10.0.0.11" || *px[0].Port != 5060 || *px[0].Transport != 0 ||
		px[1].Addr != "sbc2.example.com" || *px[1].Port != 5070 || *px[1].Transport != 1 || px[0].TTL != nil {
		t.Fatalf("proxies %+v", px)
	}
	ts.mu.Lock()
	ts.cfg = ts.applied[0]
	ts.mu.Unlock()
	_, body := ts.get(t, "/line?line=1")
	for _, want := range []string{`id="proxy1_addr" name="proxy1_addr" value="10.0.0.11"`, `id="proxy2_addr" name="proxy2_addr" value="sbc2.example.com"`,
		`id="proxy2_port" name="proxy2_port" value="5070"`, "Outbound Proxy 2 (backup)"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if !regexp.MustCompile(`<select id="proxy2_transport" name="proxy2_transport">\s*(<option[^>]*>[^<]*</option>)*<option value="1" selected>TCP</option>`).MatchString(body) {
		t.Error("proxy 2's transport is not shown as TCP")
	}
	// Two registrars behind the proxies, with the domain the address of
	// record keeps whichever the line is on (R22).
	form := proxiedForm(csrf)
	form.Set("domain", "example.com")
	form.Set("server2_addr", "10.0.0.2")
	form.Set("server2_port", "5060")
	form.Set("server2_ttl", "3600")
	form.Set("server2_transport", "0")
	if res, body := ts.post(t, "/line", form); res.StatusCode != http.StatusOK {
		t.Fatalf("submit with two registrars: %d\n%s", res.StatusCode, body)
	}
	if l := ts.applied[1].Lines[0]; len(l.OutboundProxies) != 2 || len(l.Servers) != 2 || l.Servers[1].Addr != "10.0.0.2" {
		t.Fatalf("two registrars behind two proxies: proxies %+v, servers %+v", l.OutboundProxies, l.Servers)
	}
	form = goodForm(csrf) // both proxy addresses empty, a backup server again
	if res, body := ts.post(t, "/line", form); res.StatusCode != http.StatusOK {
		t.Fatalf("submit without proxies: %d\n%s", res.StatusCode, body)
	}
	if l := ts.applied[2].Lines[0]; len(l.OutboundProxies) != 0 || len(l.Servers) != 2 {
		t.Fatalf("without proxies: proxies %+v, servers %d", l.OutboundProxies, len(l.Servers))
	}
}

// TestBadProxyFormChangesNothing: each proxy field's problem is shown
// beside it, and what belongs to no field above the form; nothing is
// applied.
func TestBadProxyFormChangesNothing(t *testing.T) {
	ts := newTestSite(t)
	csrf := ts.login(t)
	for _, tt := range []struct {
		name, field, value, at, want string
	}{
		{"port 65536", "proxy1_port", "65536", "proxy1_port", "outside 0-65535"},
		{"port -1", "proxy2_port", "-1", "proxy2_port", "outside 0-65535"},
		{"port not a number", "proxy2_port", "five", "proxy2_port", "must be a whole number"},
		{"transport 4", "proxy2_transport", "4", "proxy2_transport", "is not 0 (UDP), 1 (TCP), 3 (TLS) or 2"},
		{"bad address", "proxy1_addr", "sbc one", "proxy1_addr", "neither an IP address nor a domain name"},
		{"proxy 2 without proxy 1", "proxy1_addr", "", "proxy1_addr", "give proxy 1 first"},
		{"a second registrar behind proxies without a domain", "server2_addr", "10.0.0.2", "domain", "behind outbound_proxies with 2 registrars the address of record needs a domain"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			form := proxiedForm(csrf)
			form[tt.field] = []string{tt.value}
			if tt.field == "server2_addr" {
				form["server2_port"], form["server2_ttl"], form["server2_transport"] = []string{"5060"}, []string{"3600"}, []string{"0"}
			}
			res, body := ts.post(t, "/line", form)
			if res.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422", res.StatusCode)
			}
			placed := errBeside(body, tt.at, tt.want)
			if tt.at == "problems" {
				placed = regexp.MustCompile(`id="problems">Nothing was changed:<ul><li>[^<]*` + regexp.QuoteMeta(tt.want)).MatchString(body)
			}
			if !placed {
				t.Fatalf("no message %q at %s:\n%s", tt.want, tt.at, body)
			}
			if len(ts.applied) != 0 {
				t.Fatalf("a bad form was applied: %+v", ts.applied)
			}
		})
	}
}

// TestProxyLimitsThroughTheAPI: a proxy's port at both edges through PUT
// /api/settings, as through the file and the form, and a proxy's
// register_on_enable (R23).
func TestProxyLimitsThroughTheAPI(t *testing.T) {
	ts := newTestSite(t)
	ts.login(t)
	tok := ts.csrf(t)
	putLimits(t, ts, tok, `{"lines": [{"name": "lobby", "user": "1001", "servers": [{"addr": "10.0.0.1"}],
		"outbound_proxies": [{"addr": "sbc.example.com", "port": %d}, {"addr": "10.0.0.12"}]},
		{"name": "gate", "user": "1002", "servers": [{"addr": "10.0.1.1"}, {"addr": "10.0.1.2"}]}]}`,
		"outbound_proxies[0].port", map[int]bool{0: true, 1: true, 65535: true, -1: false, 65536: false})
	putLimits(t, ts, tok, `{"lines": [{"name": "lobby", "user": "1001", "servers": [{"addr": "10.0.0.1"}],
		"outbound_proxies": [{"addr": "10.0.0.11"}, {"addr": "10.0.0.12", "register_on_enable": %d}]},
		{"name": "gate", "user": "1002", "servers": [{"addr": "10.0.1.1"}, {"addr": "10.0.1.2"}]}]}`,
		"outbound_proxies[1].register_on_enable", map[int]bool{0: true, 1: true, 2: false, -1: false})
}

// TestRegistrarsThroughTheAPI: behind outbound proxies, 1 to 4 registrars
// through PUT /api/settings, two and more with a domain (R22); what is
// refused names its field.
func TestRegistrarsThroughTheAPI(t *testing.T) {
	ts := newTestSite(t)
	ts.login(t)
	tok := ts.csrf(t)
	doc := func(n int, domain string) string {
		var regs []string
		for k := range n {
			regs = append(regs, fmt.Sprintf(`{"addr": "10.0.2.%d"}`, k+1))
		}
		return fmt.Sprintf(`{"lines": [{"name": "lobby", "user": "1001", "domain": %q, "servers": [%s],
			"outbound_proxies": [{"addr": "10.0.0.11"}, {"addr": "10.0.0.12"}]}]}`, domain, strings.Join(regs, ", "))
	}
	for _, c := range []struct {
		n      int
		domain string
		field  string // "" when accepted
	}{{1, "", ""}, {2, "example.com", ""}, {4, "example.com", ""}, {5, "example.com", "servers"}, {0, "example.com", "servers"}, {2, "", "domain"}} {
		code, b := ts.put(t, tok, doc(c.n, c.domain))
		switch {
		case c.field == "" && code != http.StatusOK:
			t.Errorf("%d registrars, domain %q: %d %s, want accepted", c.n, c.domain, code, b)
		case c.field != "" && (code == http.StatusOK || !strings.Contains(b, `"field":"`+c.field+`"`)):
			t.Errorf("%d registrars, domain %q: %d %s, want refused naming %s", c.n, c.domain, code, b, c.field)
		}
	}
}

// putLimits PUTs doc, a settings document with one %d, with each value of
// cases: accepted when its case says so, else refused with an answer that
// names field.
func putLimits(t *testing.T, ts *testSite, tok, doc, field string, cases map[int]bool) {
	t.Helper()
	for v, ok := range cases {
		code, b := ts.put(t, tok, fmt.Sprintf(doc, v))
		if got := code == http.StatusOK; got != ok {
			t.Errorf("%s %d: %d %s, want accepted=%v", field, v, code, b, ok)
		}
		if !ok && !strings.Contains(b, `"field":"`+field+`"`) {
			t.Errorf("%s %d: the answer does not name the field: %s", field, v, b)
		}
	}
}

// TestProxiedStateWords: behind outbound proxies the line's state names
// the proxy in use and the registrar (R14, R22).
func TestProxiedStateWords(t *testing.T) {
	for _, c := range []struct {
		st   runtime.Status
		want string
	}{
		{runtime.Status{State: "backup_registered", Server: 2, ServerAddr: "TCP 10.0.0.12:5060", Registrar: "pbx.example.com (5060, UDP)"},
			"Registered through a backup, outbound proxy 2 (TCP 10.0.0.12:5060) to the registrar pbx.example.com (5060, UDP)"},
		{runtime.Status{State: "retrying", Server: 2, Registrar: "pbx.example.com (5060, UDP)"},
			"Outbound proxy 1 did not answer; trying outbound proxy 2 to the registrar pbx.example.com (5060, UDP)"},
		{runtime.Status{State: "all_failed", Server: 1, Registrar: "pbx.example.com (5060, UDP)"}, "No server could be used; trying again after a pause"},
		{runtime.Status{State: "backup_registered", Server: 2, ServerAddr: "UDP 10.0.0.2:5060"}, "Registered on a backup, server 2 (UDP 10.0.0.2:5060)"},
		// A backup registrar through the primary proxy.
		{runtime.Status{State: "retrying", Server: 1, ServerAddr: "UDP 10.0.0.11:5060", Registrar: "reg2.example.com (5060, UDP)", RegistrarNumber: 2},
			"Trying outbound proxy 1 (UDP 10.0.0.11:5060) to registrar 2, reg2.example.com (5060, UDP)"},
		{runtime.Status{State: "backup_registered", Server: 1, ServerAddr: "UDP 10.0.0.11:5060", Registrar: "reg2.example.com (5060, UDP)", RegistrarNumber: 2},
			"Registered on a backup, outbound proxy 1 (UDP 10.0.0.11:5060) to registrar 2, reg2.example.com (5060, UDP)"},
		{runtime.Status{State: "probing", Server: 1, ServerAddr: "UDP 10.0.0.11:5060", Registrar: "reg2.example.com (5060, UDP)", RegistrarNumber: 2},
			"Registered through outbound proxy 1 (UDP 10.0.0.11:5060) to registrar 2, reg2.example.com (5060, UDP); asking the primary whether it is back"},
	} {
		if got := StateWords(c.st); got != c.want {
			t.Errorf("%+v: %q, want %q", c.st, got, c.want)
		}
	}
}

// TestRegisterOnEnableThroughTheForm: R23's settings go through the Line
// page: each server's Register on Enable and the line's Only Signal With
// Registered at both edges (0 and 1 applied, 2 and -1 refused beside the
// field), and a proxy's Register on Enable with it.
func TestRegisterOnEnableThroughTheForm(t *testing.T) {
	ts := newTestSite(t)
	csrf := ts.login(t)
	form := goodForm(csrf)
	form.Set("server2_register_on_enable", "0")
	form.Set("only_signal_with_registered", "0")
	if res, body := ts.post(t, "/line", form); res.StatusCode != http.StatusOK {
		t.Fatalf("submit: %d\n%s", res.StatusCode, body)
	}
	l := ts.applied[0].Lines[0].Defaults()
	if *l.Servers[1].RegisterOnEnable != 0 || *l.Servers[0].RegisterOnEnable != 1 || *l.OnlySignalWithRegistered != 0 {
		t.Fatalf("applied register_on_enable %d, %d and only_signal_with_registered %d", *l.Servers[0].RegisterOnEnable, *l.Servers[1].RegisterOnEnable, *l.OnlySignalWithRegistered)
	}
	form = proxiedForm(csrf)
	form.Set("proxy2_register_on_enable", "0")
	if res, body := ts.post(t, "/line", form); res.StatusCode != http.StatusOK {
		t.Fatalf("submit with proxies: %d\n%s", res.StatusCode, body)
	}
	if px := ts.applied[1].Lines[0].Defaults().OutboundProxies; *px[1].RegisterOnEnable != 0 || *px[0].RegisterOnEnable != 1 {
		t.Fatalf("proxies %+v", px)
	}
	for _, c := range []struct{ field, value, want string }{
		{"server1_register_on_enable", "2", "is not 0 (shares the others' registrations) or 1"},
		{"server2_register_on_enable", "-1", "is not 0 (shares the others' registrations) or 1"},
		{"only_signal_with_registered", "2", "2 is not 0 or 1"},
		{"only_signal_with_registered", "yes", "must be a whole number"},
	} {
		form := goodForm(csrf)
		form.Set(c.field, c.value)
		res, body := ts.post(t, "/line", form)
		if res.StatusCode != http.StatusUnprocessableEntity || !errBeside(body, c.field, c.want) {
			t.Errorf("%s %s: status %d, no message %q beside it", c.field, c.value, res.StatusCode, c.want)
		}
	}
	if len(ts.applied) != 2 {
		t.Fatalf("applied %d times, want the two good forms only", len(ts.applied))
	}
	_, body := ts.get(t, "/line?line=1")
	if !strings.Contains(body, `id="server1_register_on_enable"`) || !strings.Contains(body, "0 (shares the others&#39; registrations)") {
		t.Error("the page does not offer Register on Enable")
	}
}

// TestOutboundThroughTheForm: SIP Outbound on the Line page (R24): on with
// proxies and concurrent mode is applied; on without concurrent mode is
// refused beside the field, as a value that is neither on nor off.
func TestOutboundThroughTheForm(t *testing.T) {
	ts := newTestSite(t)
	csrf := ts.login(t)
	form := proxiedForm(csrf)
	form.Set("outbound", "on")
	form.Set("registration_mode", "concurrent")
	form.Set("failback_mode", "duration") // concurrent mode's only
	if res, body := ts.post(t, "/line", form); res.StatusCode != http.StatusOK || !ts.applied[0].Lines[0].Outbound {
		t.Fatalf("outbound on: %d, applied %+v\n%s", res.StatusCode, ts.applied, body)
	}
	for value, want := range map[string]string{"on": "set registration_mode: concurrent", "sometimes": "must be on or off"} {
		form := proxiedForm(csrf)
		form.Set("outbound", value)
		res, body := ts.post(t, "/line", form)
		if res.StatusCode != http.StatusUnprocessableEntity || !errBeside(body, "outbound", want) {
			t.Errorf("outbound %s: status %d, no message %q beside it", value, res.StatusCode, want)
		}
	}
	if len(ts.applied) != 1 {
		t.Fatalf("applied %d times", len(ts.applied))
	}
}
