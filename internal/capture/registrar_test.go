package capture

import (
	"fmt"
	"testing"
	"time"
)

// Behind outbound proxies (R22) the capture's servers are the proxies, and
// the registrars behind them are named by the Request-URI of a REGISTER:
// each test is a capture a correct phone makes, and a phone that breaks
// the rule beside it.

// via: a REGISTER through proxy to registrar (its host), answered code
// (200 granting expires); it returns the next CSeq.
func (c *crafter) via(at time.Duration, proxy string, registrar, callID string, cseq, expires, code int) int {
	r := c.request("REGISTER", callID, cseq, expires)
	r.uri = "sip:" + registrar + ":5060"
	server := primary
	if proxy == "backup" {
		server = backup
	}
	c.udp(at, phone, server, r.String())
	extra := ""
	if code == 200 {
		extra = fmt.Sprintf("Contact: <sip:1001@127.0.0.1:5062>;expires=%d\r\n", expires)
	}
	c.udp(at+10*time.Millisecond, server, phone, answer(r, code, extra))
	return cseq + 1
}

// proxied are the test settings behind the two proxies, with two
// registrars behind them.
func proxied() Settings {
	s := settings()
	s.Registrars = []string{"reg1.test", "reg2.test"}
	return s
}

// TestRegistrarFailsBehindTheProxy: the primary proxy answers the refresh
// 408 for the first registrar, and the phone registers through the same
// proxy with the second: a registrar's failover, not a phone that stays
// on a failed server (I2). The same 408 for the second registrar, the last,
// sends the phone to the backup proxy; one that registers through the
// failed proxy again instead breaks I2.
func TestRegistrarFailsBehindTheProxy(t *testing.T) {
	const s = time.Second
	ms := time.Millisecond
	cr := newCrafter(t)
	cseq := cr.via(0, "primary", "reg1.test", "reg", 1, 120, 200)
	cseq = cr.via(60*s, "primary", "reg1.test", "reg", cseq, 120, 408)
	cr.via(60*s+20*ms, "primary", "reg2.test", "reg", cseq, 120, 200)
	if v := cr.verdictsWith(proxied())["I2"]; v.Status == Violated {
		t.Errorf("the second registrar through the same proxy: I2 violated: %v", v.Findings)
	}
	if v := cr.verdictsWith(settings())["I2"]; v.Status != Violated {
		t.Errorf("without the registrars, a 408 and a REGISTER to the same proxy: I2 %s, want violated", v.Status)
	}

	for _, c := range []struct {
		name, proxy string
		want        string
	}{{"the backup proxy", "backup", Held}, {"the failed proxy again", "primary", Violated}} {
		cr := newCrafter(t)
		cseq := cr.via(0, "primary", "reg1.test", "reg", 1, 120, 200)
		cseq = cr.via(60*s, "primary", "reg1.test", "reg", cseq, 120, 408)
		cseq = cr.via(60*s+20*ms, "primary", "reg2.test", "reg", cseq, 120, 408)
		cr.via(60*s+40*ms, c.proxy, "reg2.test", "reg", cseq, 120, 200)
		if v := cr.verdictsWith(proxied())["I2"]; v.Status != c.want {
			t.Errorf("408 for the last registrar, then %s: I2 %s, want %s: %v", c.name, v.Status, c.want, v.Findings)
		}
	}
}

// TestDeregisterAnotherRegistrar: failback from the second registrar to
// the first, both through the primary proxy, removes the binding on the
// second with Expires 0 (R12); the first registrar's binding, just won by
// the probe, stays, and a call through the proxy after it goes where the
// phone is registered (I5).
func TestDeregisterAnotherRegistrar(t *testing.T) {
	const s = time.Second
	ms := time.Millisecond
	cr := newCrafter(t)
	cseq := cr.via(0, "primary", "reg1.test", "reg", 1, 120, 408)
	cseq = cr.via(20*ms, "primary", "reg2.test", "reg", cseq, 120, 200)
	cr.via(60*s, "primary", "reg1.test", "probe", 1, 120, 200) // the failback probe
	cr.via(60*s+20*ms, "primary", "reg2.test", "reg", cseq, 0, 200)
	cr.call(70*s, 80*s, primary, "call")
	v := cr.verdictsWith(proxied())
	if v["I5"].Status != Held {
		t.Errorf("a call after failback to the first registrar: I5 %s (%s): %v", v["I5"].Status, v["I5"].Why, v["I5"].Findings)
	}
	if v := cr.verdictsWith(settings())["I5"]; v.Status != Violated {
		t.Errorf("without the registrars the Expires 0 removes every binding through the proxy: I5 %s, want violated", v.Status)
	}
}

// TestProbeThroughTheProxyFails: registered on the second registrar
// through the primary proxy, the phone probes the first registrar through
// the same proxy, and the proxy answers 503: the probe failed, and the
// phone rightly stays where it is (R11), no failover owed (I2). 6 s later
// it registers through the backup proxy, having found the primary proxy
// gone by what the wire shows no REGISTER of (a flow keep-alive). Drawn by
// the wire oracle.
func TestProbeThroughTheProxyFails(t *testing.T) {
	const s = time.Second
	ms := time.Millisecond
	cr := newCrafter(t)
	cseq := cr.via(0, "primary", "reg1.test", "reg", 1, 120, 408)
	cseq = cr.via(20*ms, "primary", "reg2.test", "reg", cseq, 120, 200)
	cr.via(60*s, "primary", "reg1.test", "probe", 1, 120, 503)
	cr.via(66*s, "backup", "reg1.test", "reg", cseq, 120, 200)
	if v := cr.verdictsWith(proxied())["I2"]; v.Status == Violated {
		t.Errorf("a failed probe through the proxy it is registered through: I2 violated: %v", v.Findings)
	}
}

// TestURIHostPort: a Request-URI's host and port as a capture may carry
// them, garbage included.
func TestURIHostPort(t *testing.T) {
	for _, c := range []struct{ uri, host, port string }{
		{"sip:reg1.test:5060", "reg1.test", "5060"},
		{"sip:reg1.test", "reg1.test", ""},
		{"sip:1001@reg1.test:5070;transport=tcp", "reg1.test", "5070"},
		{"sip:[::1]:5060;lr", "::1", "5060"},
		{"sip:[::1]", "::1", ""},
		{"sips:reg.test?x=1", "reg.test", ""},
		{"garbage", "", ""},
		{"sip:[::1", "::1", ""},
		{"", "", ""},
	} {
		if h, p := uriHostPort(c.uri); h != c.host || p != c.port {
			t.Errorf("%q: %q %q, want %q %q", c.uri, h, p, c.host, c.port)
		}
	}
}
