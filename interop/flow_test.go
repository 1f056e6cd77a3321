//go:build interop

package interop

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"
)

// The flow keep-alive (RFC 5626 4.4) against Kamailio: STUN Binding
// requests on its SIP port over UDP (its stun module), CRLFCRLF pings over
// TCP (its core's pongs), with no OPTIONS keep-alive and a TTL of 60 s, so
// that nothing but the keep-alive finds a dead server before the refresh.
// The interval is short here, so that the suite stays quick; with
// SIPFAILOVER_FLOW_INTERVAL=30s the same tests measure the default.

// flowInterval is the keep-alive's interval in these tests.
var flowInterval = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("SIPFAILOVER_FLOW_INTERVAL")); err == nil && d > 0 {
		return d
	}
	return 5 * time.Second
}()

// flowRuns is how many times each failover case runs: once here, five
// times with SIPFAILOVER_FLOW_RUNS=5 for a median.
var flowRuns = func() int {
	if n, err := strconv.Atoi(os.Getenv("SIPFAILOVER_FLOW_RUNS")); err == nil && n > 0 {
		return n
	}
	return 1
}()

// flowWait is how long a keep-alive waits for its answer (runtime/line_flow.go).
const flowWait = 10 * time.Second

// newFlowWorld is a world whose line has only the flow keep-alive to find
// a dead server.
func newFlowWorld(t *testing.T, transport int, backoff [2]time.Duration) *world {
	t.Helper()
	return newWorldWith(t, &world{transport: transport, ttl: 60, backoff: backoff,
		extra: []string{fmt.Sprintf("nat_keepalive_interval: %v", flowInterval)}})
}

// TestFlowKeepaliveFindsADeadServer: R1, R5. A primary killed (its port
// closed: ICMP for the STUN request, a reset on TCP) or frozen (it answered
// keep-alives, and answers none) is left for the backup within the
// keep-alive interval, and the wait for an answer when frozen, long before
// the refresh at 48 s. The log gives each run and their median.
func TestFlowKeepaliveFindsADeadServer(t *testing.T) {
	for _, c := range []struct {
		name      string
		transport int
		fail      string
		bound     time.Duration
		why       string
	}{
		{"udp killed", 0, "kill", flowInterval + budget + rtt, "an interval + the backup's registration"},
		{"tcp killed", 1, "kill", budget + rtt, "the backup's registration: the reset ends the flow at once"},
		{"udp frozen", 0, "freeze", flowInterval + flowWait + budget + rtt, "an interval + the wait for an answer + the backup's registration"},
		{"tcp frozen", 1, "freeze", flowInterval + flowWait + budget + rtt, "an interval + the wait for a pong + the backup's registration"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // worlds of their own: ports, folders, servers
			var took []time.Duration
			for range flowRuns {
				w := newFlowWorld(t, c.transport, [2]time.Duration{})
				// The first keep-alive is answered before the fault: the
				// server is one that answers them.
				w.waitUntil("a keep-alive answered", flowInterval+time.Second, func() bool { return !w.status().FlowAnswered.IsZero() })
				// The fault comes at any moment of the interval, as a real
				// one does: killed just after a keep-alive, the primary is
				// found an interval later; just before one, at once.
				time.Sleep(rand.N(flowInterval))
				start := w.kam(c.fail, "primary")
				w.waitState("backup_registered", c.bound+5*time.Second)
				took = append(took, time.Since(start))
				// With a long interval the refresh (at 48 s of the TTL's 60)
				// may find the frozen primary first; with a short one the
				// keep-alive does.
				if s := w.status(); c.fail == "freeze" && flowInterval+flowWait < 30*time.Second && s.LastEvent != "flow.lost" {
					t.Errorf("left the frozen primary on %s (%s), want flow.lost", s.LastEvent, s.LastReason)
				}
				w.kam("stopall")
			}
			slices.Sort(took)
			for _, d := range took {
				report(t, "failover, primary "+c.name, d, c.bound, c.why)
			}
			t.Logf("MEASURED median of %d: %v", len(took), took[len(took)/2].Round(time.Millisecond))
		})
	}
}

// TestFlowKeepaliveCostsNoTransaction: R5. A line on a healthy primary
// sends it keep-alives, which it answers, and they are no SIP request: the
// primary's own count of requests received (Kamailio's core:rcv_requests)
// grows by the requests its script logged (refreshes, the far end's), no
// more.
func TestFlowKeepaliveCostsNoTransaction(t *testing.T) {
	for _, c := range []struct {
		name      string
		transport int
	}{{"udp", 0}, {"tcp", 1}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newFlowWorld(t, c.transport, [2]time.Duration{})
			before, logged, options := w.rcvRequests("primary"), len(w.seen("primary")), w.saw("primary", "OPTIONS", "")
			sent := w.status().FlowSent
			window := 2*flowInterval + flowInterval/2 // two keep-alives at least, each 80-100 % of the interval apart
			time.Sleep(window)
			s := w.status()
			after, loggedAfter := w.rcvRequests("primary"), len(w.seen("primary"))
			if s.FlowSent-sent < 2 || s.FlowAnswered.IsZero() {
				t.Fatalf("%d keep-alives sent in %v, last answered at %v: want two at least, answered", s.FlowSent-sent, window, s.FlowAnswered)
			}
			if got, want := after-before, loggedAfter-logged; got != want {
				t.Errorf("the primary received %d SIP requests while it logged %d: the keep-alives cost it requests", got, want)
			}
			if n := w.saw("primary", "OPTIONS", "") - options; n > 0 {
				t.Errorf("the line sent the primary %d OPTIONS: keep-alives that are transactions", n)
			}
			t.Logf("MEASURED %d keep-alives, %d SIP requests at the primary in %v", s.FlowSent-sent, after-before, window)
		})
	}
}

// TestFlowKeepaliveEndsTheBackOff: R9. Both servers die for five
// keep-alive intervals (150 s at the default) and the line waits out a
// back-off of 10-20 minutes; the flow keep-alive goes on to each server,
// and the primary's return ends the back-off: the line is registered
// within an interval, the wait for an answer and a round trip of the
// primary's return.
func TestFlowKeepaliveEndsTheBackOff(t *testing.T) {
	for _, c := range []struct {
		name      string
		transport int
	}{{"udp", 0}, {"tcp", 1}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newFlowWorld(t, c.transport, [2]time.Duration{20 * time.Minute, 30 * time.Minute})
			w.kam("kill", "primary")
			w.kam("kill", "backup")
			w.waitState("all_failed", flowInterval+5*time.Second)
			time.Sleep(5 * flowInterval) // down for a while: keep-alives find the ports closed
			if s := w.status(); s.State != "all_failed" {
				t.Fatalf("the line is %s with both servers down", s.State)
			}
			back := w.kam(w.start("primary")...)
			w.waitState("primary_registered", flowInterval+flowWait+5*time.Second)
			bound := flowInterval + budget + rtt // a STUN answer, or a connection accepted
			if c.transport == 0 {
				bound += flowWait // over UDP Kamailio's stun module answers; a keep-alive's wait at most if its first went unanswered
			}
			report(t, "registered after the primary's return ("+c.name+")", time.Since(back), bound,
				"an interval + the wait for an answer + a registration: the keep-alive finds the server back (R9)")
		})
	}
}

// rcvRequests is the SIP requests the named server has received, by its
// own count (core:rcv_requests of kamcmd stats.get_statistics core:).
func (w *world) rcvRequests(name string) int {
	w.t.Helper()
	ctl := "unix:" + filepath.Join(w.dir, name, "kamailio_ctl")
	out, err := exec.Command("kamcmd", "-s", ctl, "stats.get_statistics", "core:").CombinedOutput()
	if err != nil {
		w.t.Fatalf("kamcmd: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^core:rcv_requests = (\d+)$`).FindSubmatch(out)
	if m == nil {
		w.t.Fatalf("kamcmd printed no core:rcv_requests: %s", out)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}
