package runtime_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/runtime/runtimetest"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
)

// outboundPair is proxiedPair with RFC 5626 outbound (R24): a
// registration through each proxy at once, asking ttl seconds, through
// proxies whose registrar asks a keep-alive every flowTimer seconds.
func outboundPair(t *testing.T, tr int, flowTimer, ttl int) *simPair {
	t.Helper()
	p := newSimPair(t, tr, 10*time.Millisecond, func(l *settings.LineConfig) {
		l.OutboundProxies = l.Servers
		port := 5090
		l.Servers = []settings.ServerConfig{{Addr: "registrar.example.com", Port: &port, TTL: &ttl}}
		l.Outbound, l.RegistrationMode = true, "concurrent"
		l.NATKeepaliveInterval = new(settings.Duration(0))
	})
	for _, e := range []transport.Endpoint{p.primary, p.backup} {
		p.network.Set(e, func(s *runtimetest.SimServer) { s.FlowTimer, s.Flow = flowTimer, true })
	}
	return p
}

// TestOutboundFlows: R24. With outbound the line registers through both
// proxies at once, each REGISTER a flow of its own: the same +sip.instance,
// reg-id 1 through proxy 1 and 2 through proxy 2, Supported outbound and
// path. The registrar's Flow-Timer sets each flow's keep-alive, even with
// the line's own NAT keep-alive off (RFC 5626 4.4.1): one every 80-100 % of
// it. A call's INVITE marks its Contact with ob; with proxy 1 dead, the
// next call goes through proxy 2 with no REGISTER before it.
func TestOutboundFlows(t *testing.T) {
	p := outboundPair(t, transport.TCP, 20, 600)
	p.line.Register()
	p.clock.Advance(time.Second)
	var instance string
	for i, e := range []transport.Endpoint{p.primary, p.backup} {
		rs := p.network.Requests(e)
		if len(rs) == 0 || rs[0].Method != "REGISTER" {
			t.Fatalf("proxy %d got %v, want a REGISTER", i+1, rs)
		}
		r := rs[len(rs)-1].Request
		c := r.GetHeader("Contact").Value()
		if !strings.Contains(c, `;reg-id=`+string(rune('1'+i))+`;+sip.instance="<urn:uuid:`) {
			t.Errorf("proxy %d's REGISTER Contact %s: want reg-id %d and an instance", i+1, c, i+1)
		}
		inst := c[strings.Index(c, "+sip.instance"):]
		if instance != "" && inst != instance {
			t.Errorf("two instances: %s and %s", instance, inst)
		}
		instance = inst
		if s := r.GetHeader("Supported"); s == nil || s.Value() != "outbound, path" {
			t.Errorf("proxy %d's REGISTER Supported %v", i+1, s)
		}
	}
	if st := p.line.Status(); len(st.Bindings) != 2 || st.Bindings[0].State != "registered" || st.Bindings[1].State != "registered" {
		t.Fatalf("bindings %+v, want two registered flows", st.Bindings)
	}
	// Flow-Timer 20: keep-alives 16-20 s apart on each flow.
	p.clock.Advance(2 * time.Minute)
	for i, e := range []transport.Endpoint{p.primary, p.backup} {
		ka := p.network.Server(e).Keepalives
		if len(ka) < 5 {
			t.Fatalf("proxy %d got %d flow keep-alives in 2 minutes, want one every 16-20 s", i+1, len(ka))
		}
		for k := 1; k < len(ka); k++ {
			if gap := ka[k] - ka[k-1]; gap < 16*time.Second || gap > 20*time.Second {
				t.Errorf("proxy %d: keep-alives %v apart, want 16-20 s (Flow-Timer 20)", i+1, gap)
			}
		}
	}

	call, err := p.line.Dial("1002")
	if err != nil {
		t.Fatal(err)
	}
	p.clock.Advance(time.Second)
	if c := lastOf(p.network.Requests(p.primary), "INVITE").Request.GetHeader("Contact").Value(); !strings.Contains(c, ";ob>") {
		t.Errorf("the INVITE's Contact %s has no ob", c)
	}
	call.Hangup()
	p.clock.Advance(time.Second)

	p.network.Set(p.primary, func(s *runtimetest.SimServer) { s.Mode = runtimetest.SimRefused })
	p.clock.Advance(25 * time.Second) // the flow's next keep-alive finds the proxy gone
	registers := len(slices.DeleteFunc(p.network.Requests(p.backup), func(r runtimetest.SimRequest) bool { return r.Method != "REGISTER" }))
	if _, err := p.line.Dial("1002"); err != nil {
		t.Fatal(err)
	}
	p.clock.Advance(time.Second)
	rs := p.network.Requests(p.backup)
	if inv := lastOf(rs, "INVITE"); inv.Method == "" || inv.Answer != 200 {
		t.Fatalf("no answered INVITE through proxy 2: %+v", inv)
	}
	if n := len(slices.DeleteFunc(rs, func(r runtimetest.SimRequest) bool { return r.Method != "REGISTER" })); n != registers {
		t.Errorf("%d REGISTERs through proxy 2 before the call, want none: its flow was registered", n-registers)
	}
}

// lastOf is the last request of method in rs, or the zero SimRequest.
func lastOf(rs []runtimetest.SimRequest, method string) runtimetest.SimRequest {
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i].Method == method {
			return rs[i]
		}
	}
	return runtimetest.SimRequest{}
}

// TestOutboundInstanceIsStable: the instance is the line's, the same
// across agents (a restart) and another for another line.
func TestOutboundInstanceIsStable(t *testing.T) {
	instance := func(name string) string {
		p := newSimPair(t, transport.UDP, 10*time.Millisecond, func(l *settings.LineConfig) {
			l.Name = name
			l.OutboundProxies = l.Servers
			l.Servers = []settings.ServerConfig{{Addr: "registrar.example.com"}}
			l.Outbound, l.RegistrationMode = true, "concurrent"
		})
		p.line.Register()
		p.clock.Advance(time.Second)
		c := p.network.Requests(p.primary)[0].Request.GetHeader("Contact").Value()
		return c[strings.Index(c, "urn:uuid:"):]
	}
	a, b, other := instance("desk"), instance("desk"), instance("lobby")
	if a != b || a == other || len(a) != len(`urn:uuid:00000000-0000-5000-8000-000000000000">`) || a[23] != '5' {
		t.Errorf("instances %s, %s (same line) and %s (another): want one stable version-5 UUID a line", a, b, other)
	}
}

// TestFlowTimerCap: a Flow-Timer of an hour is taken as it is, a longer
// one as an hour, the model's bound: keep-alives 48-60 minutes apart
// either way, not up to two hours.
func TestFlowTimerCap(t *testing.T) {
	for _, ft := range []int{3600, 7200} {
		p := outboundPair(t, transport.TCP, ft, 86400)
		p.line.Register()
		p.clock.Advance(6 * time.Hour)
		ka := p.network.Server(p.primary).Keepalives
		if len(ka) < 5 {
			t.Fatalf("Flow-Timer %d: %d keep-alives in 6 hours", ft, len(ka))
		}
		for k := 1; k < len(ka); k++ {
			if gap := ka[k] - ka[k-1]; gap < 48*time.Minute || gap > time.Hour {
				t.Errorf("Flow-Timer %d: keep-alives %v apart, want 48-60 minutes", ft, gap)
			}
		}
	}
}
