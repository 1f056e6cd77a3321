//go:build interop

package interop

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRegistersOnPrimary: the line registers on the primary Kamailio,
// answering its digest challenge (R1), and nothing reaches the backup.
func TestRegistersOnPrimary(t *testing.T) {
	w := newWorld(t)
	if n := w.saw("primary", "REGISTER", ""); n < 2 {
		t.Fatalf("the primary saw %d REGISTERs, want the challenged one and the authorised one", n)
	}
	if n := w.saw("backup", "REGISTER", ""); n != 0 {
		t.Fatalf("the backup saw %d REGISTERs while the primary was up", n)
	}
}

// TestFailover: R1, R5 against Kamailio. The primary is killed (ICMP),
// frozen (silent) or answers 503; the keep-alive finds out and the line
// registers on the backup.
func TestFailover(t *testing.T) {
	for _, m := range []struct {
		name  string
		fail  []string
		bound time.Duration
		why   string
	}{
		{"killed", []string{"kill", "primary"}, keepalive + rtt, "keep-alive interval + a round trip"},
		{"frozen", []string{"freeze", "primary"}, keepalive + budget + rtt, "keep-alive interval + retry budget + a round trip"},
		{"503", []string{"unavailable", "primary", "on"}, keepalive + rtt, "keep-alive interval + a round trip"},
	} {
		t.Run(m.name, func(t *testing.T) {
			w := newWorld(t)
			start := w.kam(m.fail...)
			w.waitState("backup_registered", 10*time.Second)
			report(t, "failover, primary "+m.name, time.Since(start), m.bound, m.why)
			if n := w.saw("backup", "REGISTER", ""); n == 0 {
				t.Fatal("the backup saw no REGISTER")
			}
		})
	}
}

// TestCallThroughBackup: R6, I5. With the primary dead, the INVITE goes to
// the backup only once the line is registered there, and reaches SIPp.
func TestCallThroughBackup(t *testing.T) {
	w := newWorld(t)
	w.kam("kill", "primary")
	start := time.Now()
	c, _ := w.call("confirmed", 10*time.Second)
	report(t, "call set-up with the primary killed", time.Since(start), budget+3*rtt, "budget + REGISTER, INVITE round trips (R6)")
	if c.Server != 2 {
		t.Fatalf("the call went through server %d, want the backup", c.Server)
	}
	if !w.farEndSaw("INVITE", c.ID) {
		t.Fatal("SIPp got no INVITE")
	}
	order := w.seen("backup")
	registered := -1
	for i, s := range order {
		if s.method == "REGISTER" && s.from == "1001" && registered < 0 {
			registered = i
		}
		if s.method == "INVITE" && s.callID == c.ID && (registered < 0 || i < registered) {
			t.Fatal("I5: an INVITE reached the backup before the line registered there")
		}
	}
	w.hangup(c.ID, 5*time.Second)
}

// TestByeFailsOver: R7. A call set up through the primary; the primary
// dies (killed, or frozen); the user hangs up; the BYE goes through the
// backup and SIPp's call ends.
func TestByeFailsOver(t *testing.T) {
	for _, m := range []struct {
		name  string
		fail  []string
		bound time.Duration
		why   string
	}{
		{"killed", []string{"kill", "primary"}, 4 * rtt, "ICMP, then REGISTER with digest and BYE round trips"},
		{"frozen", []string{"freeze", "primary"}, budget + 4*rtt, "the BYE's budget + REGISTER and BYE round trips"},
	} {
		t.Run(m.name, func(t *testing.T) {
			w := newWorld(t)
			c, _ := w.call("confirmed", 5*time.Second)
			if c.Server != 1 {
				t.Fatalf("the call went through server %d, want the primary", c.Server)
			}
			w.kam(m.fail...)
			start := time.Now()
			ended, _ := w.hangup(c.ID, 15*time.Second)
			report(t, "hang-up, primary "+m.name+" during the call", time.Since(start), m.bound, m.why)
			if !strings.Contains(ended.Reason, fmt.Sprintf("BYE answered 200 by UDP 127.0.0.1:%d", w.ports["backup"])) {
				t.Fatalf("the call ended with %q, want the backup's 200 to the BYE", ended.Reason)
			}
			if w.saw("backup", "BYE", c.ID) == 0 || !w.farEndSaw("BYE", c.ID) {
				t.Fatal("the BYE did not reach SIPp through the backup")
			}
		})
	}
}

// TestFailbackAfterRestart: R10. With the line on the backup, the primary
// restarts; the next probe finds it and the line returns.
func TestFailbackAfterRestart(t *testing.T) {
	w := newWorld(t)
	w.kam("kill", "primary")
	w.waitState("backup_registered", 5*time.Second)
	w.kam("start", "primary", fmt.Sprint(w.ports["primary"]))
	took := w.waitState("primary_registered", failback+64*t1+time.Second)
	report(t, "failback after the primary restarts", took, failback+64*t1+rtt, "Failback Interval + 64*T1 + a round trip (I1)")
}

// TestAllDownThenBack: R9. Both servers die: the line tries each in
// priority order and reports all_failed with the reason; they come back,
// and after the back-off it registers on the primary again.
func TestAllDownThenBack(t *testing.T) {
	w := newWorld(t)
	start := w.kam("kill", "primary")
	w.kam("kill", "backup")
	w.waitState("all_failed", 10*time.Second)
	report(t, "all servers down, until all_failed", time.Since(start), 2*keepalive+2*rtt,
		"keep-alive on each server + round trips (ICMP is immediate)")
	if s := w.status(); s.LastReason == "" {
		t.Fatal("all_failed without a reason")
	}
	w.kam("start", "backup", fmt.Sprint(w.ports["backup"]))
	w.kam("start", "primary", fmt.Sprint(w.ports["primary"]))
	took := w.waitState("primary_registered", 10*time.Second)
	report(t, "back on the primary once both return", took, 2*time.Second+rtt, "back-off maximum + a round trip (R9)")
}

// TestOverTCP: the line on TCP against Kamailio, whose far end is on UDP. A
// call through the primary; the primary is killed (its connection refused)
// during the call; the BYE goes through the backup and SIPp's call ends;
// a new call goes through the backup (R1, R6, R7).
func TestOverTCP(t *testing.T) {
	w := newWorldOver(t, 1)
	c, _ := w.call("confirmed", 5*time.Second)
	if c.Server != 1 || !w.farEndSaw("INVITE", c.ID) {
		t.Fatalf("call %+v: want it through the primary to SIPp", c)
	}
	w.kam("kill", "primary")
	start := time.Now()
	ended, _ := w.hangup(c.ID, 15*time.Second)
	report(t, "hang-up over TCP, primary killed during the call", time.Since(start), 4*rtt, "connection refused, then REGISTER with digest and BYE round trips")
	if !strings.Contains(ended.Reason, fmt.Sprintf("BYE answered 200 by TCP 127.0.0.1:%d", w.ports["backup"])) || !w.farEndSaw("BYE", c.ID) {
		t.Fatalf("the call ended with %q; SIPp saw the BYE: %v", ended.Reason, w.farEndSaw("BYE", c.ID))
	}
	c2, took := w.call("confirmed", 5*time.Second)
	report(t, "call set-up over TCP through the backup", took, 3*rtt, "INVITE with digest and 200 round trips")
	if c2.Server != 2 {
		t.Fatalf("the second call went through server %d, want the backup", c2.Server)
	}
	w.hangup(c2.ID, 5*time.Second)
}

// TestIncomingCall: R5. SIPp (interop/uac.xml) calls the line through the
// primary Kamailio, which finds it in the registrations; the line answers,
// and SIPp's BYE, sent along the route set, ends the call at the line.
func TestIncomingCall(t *testing.T) {
	w := newWorld(t)
	scenario, err := filepath.Abs("uac.xml")
	if err != nil {
		t.Fatal(err)
	}
	caller := exec.Command("sipp", fmt.Sprintf("127.0.0.1:%d", w.ports["primary"]), "-sf", scenario,
		"-i", "127.0.0.1", "-p", fmt.Sprint(freePort(t)), "-m", "1", "-timeout", "10s", "-timeout_error", "-nostdin")
	caller.Dir = w.dir // SIPp writes its logs where it runs
	if out, err := caller.CombinedOutput(); err != nil {
		t.Fatalf("SIPp's call to the line failed: %v\n%.2000s", err, out)
	}
	var id string
	for _, s := range w.seen("primary") {
		if s.method == "INVITE" && s.from != "1001" {
			id = s.callID
		}
	}
	if id == "" {
		t.Fatal("the primary saw no INVITE from SIPp")
	}
	c := w.waitCall(id, "ended", 5*time.Second)
	if c.Server != 1 || !strings.Contains(c.Reason, "the far end hung up") {
		t.Fatalf("the line's side of SIPp's call: %+v", c)
	}
}

// bindings lists the contacts of the line's user (1001) in the servers'
// shared location table (usrloc db_mode 3: what either server holds).
func (w *world) bindings() []string {
	w.t.Helper()
	out, err := exec.Command("sqlite3", "-cmd", ".timeout 5000", filepath.Join(w.dir, "registrations.db"),
		"SELECT contact FROM location WHERE username = '1001' ORDER BY contact").CombinedOutput()
	if err != nil {
		w.t.Fatalf("reading the location table: %v\n%s", err, out)
	}
	return strings.Fields(string(out))
}

// TestBindingsAfterFailbackOverTCP: over TCP each server sees the line
// under another Contact (its connection's port), so the backup's binding
// outlived failback in the shared location table until it expired, and a
// call forked to it went nowhere. Failback now removes it (R12), and
// stopping the agent removes the primary's: the table is read after each.
func TestBindingsAfterFailbackOverTCP(t *testing.T) {
	w := newWorldOver(t, 1)
	w.kam("kill", "primary")
	w.waitState("backup_registered", 5*time.Second)
	w.kam("start", "primary", fmt.Sprint(w.ports["primary"]))
	w.waitState("primary_registered", failback+64*t1+time.Second)
	var got []string
	deadline := time.Now().Add(5 * time.Second)
	for got = w.bindings(); len(got) != 1 && time.Now().Before(deadline); got = w.bindings() {
		time.Sleep(20 * time.Millisecond)
	}
	if len(got) != 1 {
		t.Fatalf("after failback the location table holds %v, want the primary's binding alone", got)
	}
	start := time.Now()
	w.agent.Process.Signal(syscall.SIGTERM)
	for got = w.bindings(); len(got) != 0 && time.Now().Before(start.Add(5*time.Second)); got = w.bindings() {
		time.Sleep(20 * time.Millisecond)
	}
	if len(got) != 0 {
		t.Fatalf("after SIGTERM the location table holds %v, want nothing", got)
	}
	t.Logf("MEASURED %-48s %9v", "bindings gone after SIGTERM", time.Since(start).Round(time.Millisecond))
}

// TestFlowFailureOverTCP: RFC 5626 4.4.1. Over TCP without keep-alives, a
// killed Kamailio's FIN used to go unnoticed until the next refresh (48
// minutes at the default TTL); the line now sees the connection close,
// registers again at once, is refused, and is on the backup within round
// trips.
func TestFlowFailureOverTCP(t *testing.T) {
	w := newWorldWith(t, &world{transport: 1})
	start := w.kam("kill", "primary")
	w.waitState("backup_registered", 10*time.Second)
	report(t, "failover over TCP, no keep-alive, primary killed", time.Since(start), 4*rtt,
		"the FIN, a refused connection, REGISTER with digest")
}

// TestNonceReuseHalvesRefreshes: RFC 7616 3.4. Each refresh used to cost
// two REGISTERs against Kamailio (401, then 200); with the nonce reused and
// its count going up, one.
func TestNonceReuseHalvesRefreshes(t *testing.T) {
	w := newWorldWith(t, &world{keepalive: keepalive, ttl: 10})
	first := w.saw("primary", "REGISTER", "")
	w.waitUntil("two refreshes", 20*time.Second, func() bool {
		return w.saw("primary", "REGISTER", "") >= first+2
	})
	time.Sleep(time.Second) // a refresh challenged would show its second REGISTER by now
	n := w.saw("primary", "REGISTER", "") - first
	t.Logf("MEASURED %-48s %9d  (the first registration took %d)", "REGISTERs for two refreshes", n, first)
	if first != 2 || n != 2 {
		t.Fatalf("the first registration took %d REGISTERs and two refreshes %d; want 2 and 2 (one each)", first, n)
	}
}

// waitUntil polls cond on the wall clock (real servers).
func (w *world) waitUntil(what string, within time.Duration, cond func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			w.t.Fatalf("not %s within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFailbackOverTCPAfterSilence: item 4 of the strict-server issue. Over
// TCP the primary freezes (silent); the line fails over on its keep-alive
// and closes the dead connection; the primary resumes, and the next probe
// goes over a new connection. Keeping the old one made the probe wait for
// TCP's retransmission: failback took 4.9-5.7 s, growing with the outage.
func TestFailbackOverTCPAfterSilence(t *testing.T) {
	w := newWorldOver(t, 1)
	w.kam("freeze", "primary")
	w.waitState("backup_registered", 5*time.Second)
	time.Sleep(3 * time.Second) // an outage of a few seconds: TCP's retransmission timer grows meanwhile
	start := w.kam("resume", "primary")
	w.waitState("primary_registered", failback+64*t1+5*time.Second)
	report(t, "failback over TCP after a silent outage, from resume", time.Since(start), failback+4*rtt,
		"at most a Failback Interval, then the probe with digest over a new connection")
}

// TestSRVFailover: R20 against dnsmasq and the two Kamailio servers. The
// line is configured with one domain name; its SRV records list the
// primary, then the backup. It registers on the first target, fails over
// to the second when the first is killed, and fails back when it returns.
func TestSRVFailover(t *testing.T) {
	for _, tr := range []struct {
		name      string
		transport int
	}{{"udp", 0}, {"tcp", 1}} {
		t.Run(tr.name, func(t *testing.T) {
			w := newWorldWith(t, &world{transport: tr.transport, keepalive: keepalive, srv: true})
			if s := w.status(); s.Target != fmt.Sprintf("kam1.interop.test:%d", w.ports["primary"]) {
				t.Fatalf("registered through %+v, want the first SRV target", s)
			}
			start := w.kam("kill", "primary")
			w.waitState("backup_registered", 10*time.Second)
			report(t, "failover across SRV targets, "+tr.name, time.Since(start), keepalive+rtt, "keep-alive interval + a round trip")
			if s := w.status(); s.Target != fmt.Sprintf("kam2.interop.test:%d", w.ports["backup"]) || s.Server != 2 {
				t.Fatalf("after the kill: %+v, want the second SRV target", s)
			}
			w.kam("start", "primary", fmt.Sprint(w.ports["primary"]))
			took := w.waitState("primary_registered", failback+64*t1+time.Second)
			report(t, "failback to the first SRV target, "+tr.name, took, failback+64*t1+rtt, "Failback Interval + 64*T1 + a round trip (I1)")
			if s := w.status(); s.Target != fmt.Sprintf("kam1.interop.test:%d", w.ports["primary"]) {
				t.Fatalf("after failback: %+v", s)
			}
		})
	}
}

// registersSince counts the REGISTERs of the line (1001) a server logged
// after the first n.
func (w *world) registersSince(server string, n int) int {
	all := w.saw(server, "REGISTER", "")
	return all - n
}

// TestFailbackModes: R18 against Kamailio. For each failback mode the
// primary is killed, the line goes to the backup, the primary restarts,
// and the test measures how long until the line is back on the primary
// and how many REGISTERs it sent the primary meanwhile (its probes).
func TestFailbackModes(t *testing.T) {
	for _, m := range []struct {
		name  string
		w     world
		bound time.Duration
		why   string
	}{
		{"duration", world{}, failback + 64*t1 + rtt, "Failback Interval + 64*T1 + a round trip"},
		// The probe and the backup's refresh go out together: the servers
		// must not share a database that takes one writer at a time.
		{"registration", world{ttl: 10, memory: true, extra: []string{"failback_mode: registration"}}, 10*time.Second + 64*t1 + rtt,
			"the backup's refresh (80 % of a 10 s TTL) + 64*T1 + a round trip"},
		{"dns_ttl", world{srv: true, dnsTTL: 5, extra: []string{"failback_mode: dns_ttl"}}, 5*time.Second + 64*t1 + rtt,
			"the records' TTL (5 s) + 64*T1 + a round trip"},
	} {
		t.Run(m.name, func(t *testing.T) {
			m.w.keepalive = keepalive
			w := newWorldWith(t, &m.w)
			w.kam("kill", "primary")
			w.waitState("backup_registered", 10*time.Second)
			before := w.saw("primary", "REGISTER", "")
			w.kam(w.start("primary")...)
			took := w.waitState("primary_registered", m.bound+2*time.Second)
			report(t, "failback, mode "+m.name, took, m.bound, m.why)
			t.Logf("MEASURED %-48s %9d  (REGISTERs to the primary from its restart to failback)", "probes, mode "+m.name, w.registersSince("primary", before))
		})
	}
	t.Run("new_requests", func(t *testing.T) {
		w := newWorldWith(t, &world{keepalive: keepalive, extra: []string{"failback_mode: new_requests"}})
		w.kam("kill", "primary")
		w.waitState("backup_registered", 10*time.Second)
		before := w.saw("primary", "REGISTER", "")
		w.kam("start", "primary", fmt.Sprint(w.ports["primary"]))
		time.Sleep(failback + time.Second) // a Failback Interval and more: nothing is tried without a request
		if n := w.registersSince("primary", before); n != 0 || w.status().State != "backup_registered" {
			t.Fatalf("without a request: %d REGISTERs to the primary, state %s", n, w.status().State)
		}
		start := time.Now()
		c, setup := w.call("confirmed", 10*time.Second)
		report(t, "failback, mode new_requests, from the call", time.Since(start), 3*rtt, "the probe with digest, then the INVITE")
		report(t, "call set-up, mode new_requests", setup, 4*rtt, "probe with digest, INVITE and 200 round trips")
		if s := w.status(); s.State != "primary_registered" || c.Server != 1 {
			t.Fatalf("after the call: line %+v, call through server %d; want both on the primary", s, c.Server)
		}
		t.Logf("MEASURED %-48s %9d  (REGISTERs to the primary from its restart to failback)", "probes, mode new_requests", w.registersSince("primary", before))
		w.hangup(c.ID, 5*time.Second)
	})
}

// TestFailbackWaitsForTheCall: R18, failback_when idle (the default). With
// a call up through the backup the line stays there though the primary is
// back; it fails back right after the call ends.
func TestFailbackWaitsForTheCall(t *testing.T) {
	w := newWorld(t)
	w.kam("kill", "primary")
	w.waitState("backup_registered", 10*time.Second)
	c, _ := w.call("confirmed", 10*time.Second)
	before := w.saw("primary", "REGISTER", "")
	w.kam("start", "primary", fmt.Sprint(w.ports["primary"]))
	time.Sleep(failback + time.Second)
	if s := w.status(); s.State != "backup_registered" || w.registersSince("primary", before) != 0 {
		t.Fatalf("during the call: %+v, %d REGISTERs to the primary; want the line left on the backup", s, w.registersSince("primary", before))
	}
	_, _ = w.hangup(c.ID, 5*time.Second)
	took := w.waitState("primary_registered", 5*time.Second)
	report(t, "failback after the call ends", took, 2*rtt, "the probe with digest")
}

// TestConcurrentInviteFailover: R17 against Kamailio. With the primary
// killed or frozen and no keep-alive to notice it first, a call's INVITE
// finds it down: in successive mode the line registers on the backup, then
// sends the INVITE there; in concurrent mode the backup holds a binding
// already, and the INVITE goes at once, with no REGISTER first. Both are
// measured in the same run.
func TestConcurrentInviteFailover(t *testing.T) {
	for _, fail := range [][]string{{"kill", "primary"}, {"freeze", "primary"}} {
		for _, mode := range []string{"successive", "concurrent"} {
			t.Run(fail[0]+"/"+mode, func(t *testing.T) {
				w := newWorldWith(t, &world{extra: []string{"registration_mode: " + mode}})
				if mode == "concurrent" {
					// Both bindings up before the failure. (The two servers
					// share one SQLite file: a server answering one of two
					// REGISTERs at the same instant may find it locked
					// ("database is locked" in its log), fail the digest
					// check and challenge again; that binding then comes up
					// after its back-off.)
					start := time.Now()
					for s := w.status(); len(s.Bindings) != 2 || s.Bindings[0].State != "registered" || s.Bindings[1].State != "registered"; s = w.status() {
						if time.Since(start) > 10*time.Second {
							t.Fatalf("the bindings are not both up: %+v", s)
						}
						time.Sleep(5 * time.Millisecond) // polls another process
					}
				}
				before := w.saw("backup", "REGISTER", "")
				w.kam(fail...)
				c, setup := w.call("confirmed", 10*time.Second)
				bound := 3 * rtt
				if fail[0] == "freeze" {
					bound += budget
				}
				report(t, fmt.Sprintf("call set-up, primary %s, %s", map[string]string{"kill": "killed", "freeze": "frozen"}[fail[0]], mode), setup, bound+2*rtt,
					"the INVITE's budget on the primary, then (successive) REGISTER with digest, INVITE and 200")
				registered := w.saw("backup", "REGISTER", "") - before
				t.Logf("MEASURED %-48s %9d  (REGISTERs to the backup between the failure and the call)", "REGISTERs first, "+mode, registered)
				switch {
				case c.Server != 2:
					t.Fatalf("the call went through server %d, want the backup", c.Server)
				case mode == "concurrent" && registered != 0:
					t.Fatalf("concurrent mode sent %d REGISTERs to the backup before the INVITE", registered)
				case mode == "successive" && registered == 0:
					t.Fatal("successive mode reached the backup without registering there")
				}
				w.hangup(c.ID, 5*time.Second)
			})
		}
	}
}
