//go:build interop

package interop

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// flows lists the line's bindings at the registrar as RFC 5626 flows:
// "reg_id instance" per binding of user 1001.
func (w *world) flows() []string {
	w.t.Helper()
	out, err := exec.Command("sqlite3", "-cmd", ".timeout 5000", filepath.Join(w.dir, "registrations.db"),
		"SELECT reg_id || ' ' || instance FROM location WHERE username = '1001' ORDER BY reg_id").CombinedOutput()
	if err != nil {
		w.t.Fatalf("reading the location table: %v\n%s", err, out)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// TestOutboundFlowsThroughProxies: R24 against Kamailio over UDP and TCP.
// With outbound the line registers through both edge proxies at once; the
// registrar (outbound_mode 1) keeps two flows of one instance, reg-id 1 and
// 2, and asks a keep-alive every 5 s (Flow-Timer), which the line sends
// though its own NAT keep-alive is every 30 s. Proxy 1 is killed; the next
// call goes through proxy 2 with no REGISTER before it, and reaches the far
// end. Proxy 1 returns: its flow registers again and the line is back on it.
func TestOutboundFlowsThroughProxies(t *testing.T) {
	for _, tr := range []struct {
		name      string
		transport int
	}{{"UDP", 0}, {"TCP", 1}} {
		t.Run(tr.name, func(t *testing.T) {
			w := &world{transport: tr.transport, keepalive: 0, proxies: true, outbound: true,
				extra: []string{"registration_mode: concurrent", "outbound: true"}}
			w = newWorldWith(t, w)
			w.waitUntil("both flows registered", 5*time.Second, func() bool {
				b := w.status().Bindings
				return len(b) == 2 && b[0].State == "registered" && b[1].State == "registered"
			})
			flows := w.flows()
			if len(flows) != 2 || !strings.HasPrefix(flows[0], "1 <urn:uuid:") || !strings.HasPrefix(flows[1], "2 <urn:uuid:") ||
				strings.TrimPrefix(flows[0], "1 ") != strings.TrimPrefix(flows[1], "2 ") {
				t.Fatalf("the registrar's flows %q: want reg-id 1 and 2 of one instance", flows)
			}
			sent := w.status().FlowSent
			w.waitUntil("two flow keep-alives: the registrar's Flow-Timer 5 asks one a flow every 4-5 s", 6*time.Second, func() bool {
				return w.status().FlowSent-sent >= 2
			})

			w.kam("kill", "primary")
			registers := w.saw("backup", "REGISTER", "")
			call, took := w.call("confirmed", 10*time.Second)
			report(t, tr.name+" call set-up, proxy 1 killed, outbound", took, budget+3*rtt, "at most the INVITE's budget on proxy 1, then INVITE and 200 through proxy 2")
			if call.Server != 2 || !w.farEndSaw("INVITE", call.ID) {
				t.Fatalf("the call went through server %d: want proxy 2, to the far end", call.Server)
			}
			if n := w.saw("backup", "REGISTER", ""); n != registers {
				t.Errorf("%d REGISTERs through proxy 2 during the call's set-up: its flow was registered", n-registers)
			}
			w.hangup(call.ID, 5*time.Second)

			// Proxy 1 returns: its flow registers again, at the latest when
			// the flow's back-off (1 to 2 s here) ends, and the line is on
			// the primary again.
			w.kam(w.start("primary")...)
			w.waitUntil("the flow through proxy 1 registered again", 10*time.Second, func() bool {
				b := w.status().Bindings
				return len(b) == 2 && b[0].State == "registered"
			})
			if s := w.status(); s.Server != 1 {
				t.Errorf("back on server %d after proxy 1 returned, want the primary", s.Server)
			}
			if flows := w.flows(); len(flows) != 2 {
				t.Errorf("the registrar's flows after proxy 1 returned: %q, want both", flows)
			}
		})
	}
}
