//go:build interop

package interop

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/internal/capture"
)

// The line behind two Kamailio edge proxies (interop/proxy.cfg.in) in front
// of one Kamailio registrar that keeps Paths (R22, RFC 3327).

// paths lists the Path of each binding of the line's user (1001) at the
// registrar.
func (w *world) paths() []string {
	w.t.Helper()
	out, err := exec.Command("sqlite3", "-cmd", ".timeout 5000", filepath.Join(w.dir, "registrations.db"),
		"SELECT path FROM location WHERE username = '1001' ORDER BY path").CombinedOutput()
	if err != nil {
		w.t.Fatalf("reading the location table: %v\n%s", err, out)
	}
	return strings.Fields(string(out))
}

// pathThrough says whether a binding of the line at the registrar has the
// named proxy as its Path.
func (w *world) pathThrough(proxy string) bool {
	for _, p := range w.paths() {
		if strings.Contains(p, fmt.Sprintf("127.0.0.1:%d", w.ports[proxy])) {
			return true
		}
	}
	return false
}

// callTheLine has SIPp (interop/uac.xml) call the line through the named
// server and hang up; it returns the call's Call-ID as the line knows it.
func (w *world) callTheLine(via string) string {
	w.t.Helper()
	scenario, err := filepath.Abs("uac.xml")
	if err != nil {
		w.t.Fatal(err)
	}
	caller := exec.Command("sipp", fmt.Sprintf("127.0.0.1:%d", w.ports[via]), "-sf", scenario,
		"-i", "127.0.0.1", "-p", fmt.Sprint(freePort(w.t)), "-m", "1", "-timeout", "10s", "-timeout_error", "-nostdin")
	caller.Dir = w.dir // SIPp writes its logs where it runs
	if out, err := caller.CombinedOutput(); err != nil {
		invites, _ := exec.Command("sh", "-c", "grep -H 'SEEN INVITE' "+w.dir+"/*/kamailio.log").CombinedOutput()
		w.t.Fatalf("SIPp's call to the line through %s failed: %v (ports %v)\nthe INVITEs the servers saw:\n%s\n%.2000s", via, err, w.ports, invites, out)
	}
	for _, s := range w.seen(via) {
		if s.method == "INVITE" && s.from != "1001" {
			return s.callID
		}
	}
	w.t.Fatalf("%s saw no INVITE from SIPp", via)
	return ""
}

// TestOutboundProxyFailover: R22 over UDP and TCP. The line registers
// through proxy 1, and the registrar keeps proxy 1 as its Path; proxy 1 is
// killed, frozen or answers 503: the line registers through proxy 2 within
// its bound, the registrar's Path follows, and a call the far end places
// at the registrar reaches the line through proxy 2. Proxy 1 recovers: the
// line fails back to it, and the Path with it.
func TestOutboundProxyFailover(t *testing.T) {
	for _, tr := range []struct {
		name      string
		transport int
	}{{"UDP", 0}, {"TCP", 1}} {
		for _, m := range []struct {
			name           string
			fail, recover  []string
			bound          time.Duration
			why            string
			restartPrimary bool
		}{
			{"killed", []string{"kill", "primary"}, nil, keepalive + 2*rtt, "keep-alive interval + REGISTER round trips", true},
			{"frozen", []string{"freeze", "primary"}, []string{"resume", "primary"}, keepalive + budget + 2*rtt, "keep-alive interval + retry budget + REGISTER round trips", false},
			{"503", []string{"unavailable", "primary", "on"}, []string{"unavailable", "primary", "off"}, keepalive + 2*rtt, "keep-alive interval + REGISTER round trips", false},
		} {
			t.Run(tr.name+"/"+m.name, func(t *testing.T) {
				w := newWorldWith(t, &world{transport: tr.transport, keepalive: keepalive, proxies: true})
				if s := w.status(); s.Server != 1 || !w.pathThrough("primary") {
					t.Fatalf("registered at server %d with Paths %q: want through proxy 1", s.Server, w.paths())
				}
				if n := w.saw("registrar", "REGISTER", ""); n < 2 {
					t.Fatalf("the registrar saw %d REGISTERs of the line, want the challenged one and the authorised one", n)
				}
				start := w.kam(m.fail...)
				w.waitState("backup_registered", 10*time.Second)
				report(t, tr.name+" failover, proxy 1 "+m.name, time.Since(start), m.bound, m.why)
				w.waitUntil("the registrar's Path names proxy 2", 2*time.Second, func() bool { return w.pathThrough("backup") })

				id := w.callTheLine("registrar")
				c := w.waitCall(id, "ended", 5*time.Second)
				if c.Server != 2 || !strings.Contains(c.Reason, "the far end hung up") {
					t.Fatalf("the far end's call: %+v, want it through proxy 2 (server 2), ended by the far end", c)
				}
				if w.sawFrom("backup", "INVITE", id) == 0 {
					t.Fatal("the far end's INVITE did not pass proxy 2")
				}

				if m.restartPrimary {
					w.kam(w.start("primary")...)
				} else {
					w.kam(m.recover...)
				}
				w.waitState("primary_registered", failback+5*time.Second)
				w.waitUntil("the registrar's Path names proxy 1 alone", 2*time.Second, func() bool {
					return w.pathThrough("primary") && !w.pathThrough("backup")
				})
			})
		}
	}
}

// TestRegistrarFailoverBehindProxies: R22 over UDP and TCP, with two
// Kamailio registrars behind the proxy pair, sharing one location
// database as a registrar pair does. Registrar 1 answers 503, which proxy
// 1 relays as 500 (tm's remap_503_500, RFC 3261 16.7): at its next refresh
// the line registers on registrar 2 through proxy 1, and proxy 2 sees no
// REGISTER: the proxy did not fail, the registrar did. Registrar 1
// recovers: the probe goes through proxy 1 to it, and the line is back on
// proxy 1 and registrar 1.
func TestRegistrarFailoverBehindProxies(t *testing.T) {
	for _, tr := range []struct {
		name      string
		transport int
	}{{"UDP", 0}, {"TCP", 1}} {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel() // worlds of their own: ports, folders, servers
			w := newWorldWith(t, &world{transport: tr.transport, keepalive: keepalive, proxies: true, registrar2: true, ttl: 10})
			registrar := func(name string) string { return fmt.Sprintf("127.0.0.1 (%d, UDP)", w.ports[name]) }
			if s := w.status(); s.Server != 1 || s.Registrar != registrar("registrar") {
				t.Fatalf("registered at server %d, registrar %q: want proxy 1 and registrar 1", s.Server, s.Registrar)
			}
			before := w.saw("backup", "REGISTER", "")
			start := w.kam("unavailable", "registrar", "on")
			// The refresh at 8 s of the 10 s granted finds registrar 1 gone.
			w.waitState("backup_registered", 12*time.Second)
			report(t, tr.name+" registrar failover behind proxy 1", time.Since(start), 8*time.Second+4*rtt, "refresh at 4/5 of the TTL + REGISTER round trips")
			s := w.status()
			if s.Server != 1 || s.Registrar != registrar("registrar2") || !strings.Contains(s.LastReason, "500") {
				t.Fatalf("after registrar 1 failed: server %d, registrar %q, reason %q; want proxy 1, registrar 2, the proxy's 500", s.Server, s.Registrar, s.LastReason)
			}
			if w.saw("registrar2", "REGISTER", "") == 0 {
				t.Fatal("registrar 2 saw no REGISTER")
			}
			if n := w.saw("backup", "REGISTER", ""); n != before {
				t.Fatalf("proxy 2 saw %d REGISTERs more: the line failed the proxy over, not the registrar", n-before)
			}
			w.kam("unavailable", "registrar", "off")
			w.waitState("primary_registered", failback+5*time.Second)
			if s := w.status(); s.Server != 1 || s.Registrar != registrar("registrar") {
				t.Fatalf("after registrar 1 recovered: server %d, registrar %q; want proxy 1 and registrar 1", s.Server, s.Registrar)
			}
		})
	}
}

// TestByeThroughTheBackupProxy: R7 and R22. A call set up through proxy 1;
// proxy 1 dies; the user hangs up: the BYE goes through proxy 2 with proxy
// 2 as a pre-loaded route before the dialog's route set, and the far end's
// call ends.
func TestByeThroughTheBackupProxy(t *testing.T) {
	for _, tr := range []struct {
		name      string
		transport int
	}{{"UDP", 0}, {"TCP", 1}} {
		t.Run(tr.name, func(t *testing.T) {
			w := newWorldWith(t, &world{transport: tr.transport, keepalive: keepalive, proxies: true})
			c, _ := w.call("confirmed", 5*time.Second)
			if c.Server != 1 || w.saw("primary", "INVITE", c.ID) == 0 {
				t.Fatalf("the call went through server %d, want proxy 1", c.Server)
			}
			w.kam("kill", "primary")
			start := time.Now()
			ended, _ := w.hangup(c.ID, 15*time.Second)
			report(t, tr.name+" hang-up, proxy 1 killed during the call", time.Since(start), budget+4*rtt, "at most the BYE's budget + REGISTER and BYE round trips")
			via := map[int]string{0: "UDP", 1: "TCP"}[tr.transport]
			if !strings.Contains(ended.Reason, fmt.Sprintf("BYE answered 200 by %s 127.0.0.1:%d", via, w.ports["backup"])) {
				t.Fatalf("the call ended with %q, want proxy 2's 200 to the BYE", ended.Reason)
			}
			if w.saw("backup", "BYE", c.ID) == 0 || !w.farEndSaw("BYE", c.ID) {
				t.Fatal("the BYE did not reach SIPp through proxy 2")
			}
		})
	}
}

// sawFrom counts the requests of method a server got from anyone but the
// line, of one call.
func (w *world) sawFrom(server, method, callID string) int {
	n := 0
	for _, s := range w.seen(server) {
		if s.method == method && s.from != "1001" && s.callID == callID {
			n++
		}
	}
	return n
}

// TestCaptureOfAProxiedLine: verify-capture judges a line behind outbound
// proxies by what it sends to them (R22), from a capture taken at the
// phone: the proxies' traffic with the line, not their relaying to the
// registrar. A call through proxy 1, proxy 1 killed (over UDP) or frozen
// (over TCP) with the call up, the hang-up through proxy 2, and proxy 1's
// recovery: the program is correct, so no invariant may be violated, and
// those the run exercises are held.
func TestCaptureOfAProxiedLine(t *testing.T) {
	for _, c := range []struct {
		name      string
		transport int
		f         fault
	}{{"UDP/killed", 0, faults[0]}, {"TCP/frozen", 1, faults[1]}} {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "run.pcap")
			var stop func()
			w := newWorldWith(t, &world{transport: c.transport, keepalive: keepalive, proxies: true, beforeStart: func(w *world) {
				stop = tcpdumpFilter(t, file, fmt.Sprintf("(icmp or port %d or port %d) and not port %d",
					w.ports["primary"], w.ports["backup"], w.ports["registrar"]))
			}})
			call, _ := w.call("confirmed", 5*time.Second)
			c.f.fail(w)
			w.waitState("backup_registered", c.f.bound)
			w.hangup(call.ID, 15*time.Second)
			c.f.recover(w)
			w.waitState("primary_registered", failback+64*t1+5*time.Second)
			time.Sleep(time.Second) // a keep-alive on the wire
			stop()

			r := check(t, file, w.agentCaptureSettings())
			for _, v := range r.Verdicts {
				if v.Status == capture.Violated {
					t.Errorf("%s violated: %+v", v.ID, v.Findings)
				}
			}
			for _, id := range []string{"I1", "I3", "I4", "I5", "I10", "I11"} {
				if v := verdictOf(r, id); v.Status != capture.Held {
					t.Errorf("%s: %s (%s), want held", id, v.Status, v.Why)
				}
			}
			t.Logf("%d frames over %v", r.Frames, r.Duration.Round(time.Millisecond))
		})
	}
}
