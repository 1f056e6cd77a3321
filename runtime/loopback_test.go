package runtime_test

import (
	"crypto/tls"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/runtimetest"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
)

// slack is how late a wall-clock measurement on real sockets may come on a
// loaded machine (the race detector, parallel packages on two cores). Exact times are
// checked in virtual time by the scenarios; these tests check real sockets.
const slack = 150 * time.Millisecond

// bench is a line on real loopback sockets between two embedded registrars.
type bench struct {
	t       testing.TB
	primary *runtimetest.Registrar
	backup  *runtimetest.Registrar
	net     *transport.SocketNetwork
	agent   *runtime.Agent
	line    *runtime.Line
	mu      sync.Mutex
	log     []runtime.Transition
	changed chan struct{}
}

func newBench(t testing.TB, network string, tweak func(*settings.LineConfig)) *bench {
	t.Helper()
	b := &bench{t: t, changed: make(chan struct{}, 100)}
	// The two share their registrations, as the seed's servers do, and know
	// the far end of calls, 1002.
	loc, far := runtimetest.NewLocation(), map[string]string{"1002": "far"}
	b.primary = &runtimetest.Registrar{Name: "primary", Network: network, User: "1001", Password: "secret", Users: far, Location: loc}
	b.backup = &runtimetest.Registrar{Name: "backup", Network: network, User: "1001", Password: "secret", Users: far, Location: loc}
	var clientTLS *tls.Config
	if network == "tls" {
		serverTLS, roots, err := runtimetest.SelfSignedTLS("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		b.primary.TLS, b.backup.TLS = serverTLS, serverTLS
		clientTLS = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	for _, r := range []*runtimetest.Registrar{b.primary, b.backup} {
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Stop)
	}
	transport := map[string]int{"udp": settings.TransportUDP, "tcp": settings.TransportTCP, "tls": settings.TransportTLS}[network]
	servers := []settings.ServerConfig{
		{Addr: "127.0.0.1", Port: new(b.primary.Port()), Transport: &transport},
		{Addr: "127.0.0.1", Port: new(b.backup.Port()), Transport: &transport},
	}
	primary, backup := b.primary, b.backup
	b = newBenchWith(t, clientTLS, servers, tweak)
	b.primary, b.backup = primary, backup
	return b
}

// newBenchWith is a bench whose line has servers, on a network that checks
// TLS servers against clientTLS, with the agent's opts.
func newBenchWith(t testing.TB, clientTLS *tls.Config, servers []settings.ServerConfig, tweak func(*settings.LineConfig), opts ...runtime.Option) *bench {
	t.Helper()
	b := &bench{t: t, changed: make(chan struct{}, 100)}
	cfg := settings.LineConfig{
		Name: "test", User: "1001", Password: "secret", Domain: "example.test", Servers: servers,
		T1: settings.Duration(20 * time.Millisecond), T2: settings.Duration(160 * time.Millisecond),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	b.net = transport.NewSocketNetwork(clientTLS, nil)
	t.Cleanup(func() { b.net.Close() })
	opts = append([]runtime.Option{runtime.WithSeed(1), runtime.WithWatcher(func(tr runtime.Transition) {
		b.mu.Lock()
		b.log = append(b.log, tr)
		b.mu.Unlock()
		select {
		case b.changed <- struct{}{}:
		default:
		}
	})}, opts...)
	b.agent = runtime.NewAgent(b.net, opts...)
	line, err := b.agent.AddLine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b.line = line
	return b
}

// waitState waits (on the wall clock: these are real sockets) until the line
// is in state, and returns how long that took.
func (b *bench) waitState(state string, within time.Duration) time.Duration {
	b.t.Helper()
	start := time.Now()
	deadline := time.After(within)
	for {
		if b.line.Status().State == state {
			return time.Since(start)
		}
		select {
		case <-b.changed:
		case <-time.After(5 * time.Millisecond):
		case <-deadline:
			b.mu.Lock()
			defer b.mu.Unlock()
			b.t.Fatalf("line not %s within %v; status %+v; transitions:\n%v", state, within, b.line.Status(), b.log)
		}
	}
}

// TestICMPUnreachableFailsOverAtOnce: R1, a REGISTER to a closed UDP port is
// declared unavailable on the ICMP, well under the retry budget.
func TestICMPUnreachableFailsOverAtOnce(t *testing.T) {
	b := newBench(t, "udp", nil)
	b.primary.Stop()
	start := time.Now()
	b.line.Register()
	b.waitState("backup_registered", 2*time.Second)
	b.mu.Lock()
	defer b.mu.Unlock()
	var icmp *runtime.Transition
	for i := range b.log {
		if b.log[i].Event == "transport.icmp" {
			icmp = &b.log[i]
			break
		}
	}
	if icmp == nil {
		t.Fatalf("no transport.icmp transition: %v", b.log)
	}
	if took := icmp.At.Sub(start); took > 100*time.Millisecond {
		t.Errorf("ICMP unreachable noticed after %v, want well under 100ms", took)
	}
	if st := b.line.Status(); st.Server != 2 || !st.Registered || st.LastFailure != "transport.icmp" {
		t.Errorf("status %+v", st)
	}
	if !b.backup.Registered() {
		t.Error("the backup holds no binding")
	}
}

// count returns how many requests of method r saw.
func count(r *runtimetest.Registrar, method string) int {
	n := 0
	for _, s := range r.Seen() {
		if s.Method == method {
			n++
		}
	}
	return n
}

// event returns the first transition on ev, or fails.
func (b *bench) event(ev string) runtime.Transition {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, tr := range b.log {
		if tr.Event == ev {
			return tr
		}
	}
	b.t.Fatalf("no transition on %s: %v", ev, b.log)
	return runtime.Transition{}
}

// Test503RetryAfter: R1, a 503 fails over at once, and its Retry-After keeps
// the primary skipped (I3) without a request being sent to it.
func Test503RetryAfter(t *testing.T) {
	b := newBench(t, "udp", nil)
	b.primary.SetAnswer(503, 30)
	b.line.Register()
	b.waitState("backup_registered", 2*time.Second)
	if got := b.line.Status().LastReason; got != "503 Service Unavailable from UDP "+b.primary.Addr+" (Retry-After 30s)" {
		t.Errorf("last reason %q", got)
	}
	sent := count(b.primary, "REGISTER")
	b.mu.Lock()
	mark := len(b.log)
	b.mu.Unlock()
	b.line.Register() // a manual re-registration starts from the primary, which is skipped
	b.waitState("backup_registered", 2*time.Second)
	if got := count(b.primary, "REGISTER"); got != sent {
		t.Errorf("the primary got %d more REGISTERs during its Retry-After", got-sent)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var steps []string
	for _, tr := range b.log[mark:] {
		if tr.From != tr.To {
			steps = append(steps, tr.To+" on "+tr.Event)
		}
	}
	want := []string{"registering on user.register", "retrying on server.held_off", "backup_registered on resp.2xx"}
	if !slices.Equal(steps, want) {
		t.Errorf("after the re-registration: %v, want %v", steps, want)
	}
}

// TestSilentServerBudget: R3 and I4, a silent primary gets exactly
// signal_retry_counts transmissions on Timer E spacing, and the verdict
// comes when the timer after the last one fires.
func TestSilentServerBudget(t *testing.T) {
	b := newBench(t, "udp", nil) // N=3, T1=20ms: sends at 0, 20, 60ms; verdict at 140ms
	b.primary.SetMode(runtimetest.Silent)
	start := time.Now()
	b.line.Register()
	b.waitState("backup_registered", 2*time.Second)
	verdict := b.event("timer.budget").At.Sub(start)
	if verdict < 140*time.Millisecond || verdict > 140*time.Millisecond+slack {
		t.Errorf("verdict after %v, want 140ms (+ up to %v of scheduling)", verdict, slack)
	}
	seen := b.primary.Seen()
	if len(seen) != 3 {
		t.Fatalf("the primary got %d transmissions, want 3", len(seen))
	}
	for i, want := range []time.Duration{20 * time.Millisecond, 40 * time.Millisecond} {
		// Receipt times at the registrar lag the sends by whatever a loaded
		// machine adds, so a gap can look short by as much as its first
		// receipt was late: only the upper bound is a wall-clock fact here.
		// The spacing itself is checked exactly in virtual time
		// (testdata/r3_count_budget.txt).
		if gap := seen[i+1].At.Sub(seen[i].At); gap > want+slack {
			t.Errorf("gap %d is %v, want %v (Timer E)", i, gap, want)
		}
	}
}

// TestTCPRefused: R1, a refused TCP connection fails over at once.
func TestTCPRefused(t *testing.T) {
	b := newBench(t, "tcp", nil)
	b.primary.Stop()
	start := time.Now()
	b.line.Register()
	b.waitState("backup_registered", 2*time.Second)
	if took := b.event("transport.tcp").At.Sub(start); took > 100*time.Millisecond {
		t.Errorf("refusal noticed after %v", took)
	}
	if !b.backup.Registered() {
		t.Error("no binding on the backup")
	}
}

// TestWrongPasswordFails: R1, rejected credentials end in failed with a
// clear reason: no loop, no failover.
func TestWrongPasswordFails(t *testing.T) {
	b := newBench(t, "udp", func(c *settings.LineConfig) { c.Password = "wrong" })
	b.line.Register()
	b.waitState("failed", 2*time.Second)
	if got := count(b.primary, "REGISTER"); got != 2 {
		t.Errorf("the primary got %d REGISTERs, want 2 (one challenged, one with credentials)", got)
	}
	if len(b.backup.Seen()) != 0 {
		t.Error("a failed authentication failed over to the backup")
	}
	if st := b.line.Status(); !strings.HasPrefix(st.LastReason, "authentication failed") {
		t.Errorf("reason %q", st.LastReason)
	}
}

// Test403NoFailover: R1, 403 is reported and does not fail over.
func Test403NoFailover(t *testing.T) {
	b := newBench(t, "udp", nil)
	b.primary.SetAnswer(403, 0)
	b.line.Register()
	b.waitState("failed", 2*time.Second)
	if len(b.backup.Seen()) != 0 {
		t.Error("a 403 failed over to the backup")
	}
	if st := b.line.Status(); st.LastReason != "403 Forbidden from UDP "+b.primary.Addr {
		t.Errorf("reason %q", st.LastReason)
	}
}

// TestFailback: R10, with the primary back, the probe (its own Call-ID)
// finds it and the line returns; the backup registration was not touched by
// the probe.
func TestFailback(t *testing.T) {
	one := 1
	b := newBench(t, "udp", func(c *settings.LineConfig) { c.FailbackInterval = &one })
	b.primary.Stop()
	b.line.Register()
	b.waitState("backup_registered", 2*time.Second)
	if err := b.primary.Start(); err != nil {
		t.Fatal(err)
	}
	took := b.waitState("primary_registered", 3*time.Second)
	bound := time.Second + 64*20*time.Millisecond + 20*time.Millisecond // I1
	if took > bound {
		t.Errorf("failback after %v, bound %v", took, bound)
	}
	backupCalls := map[string]bool{}
	for _, s := range b.backup.Seen() {
		backupCalls[s.CallID] = true
	}
	for _, s := range b.primary.Seen() {
		if backupCalls[s.CallID] {
			t.Errorf("the probe reused the backup registration's Call-ID %s", s.CallID)
		}
	}
	if !b.primary.Registered() || !b.backup.Registered() {
		t.Errorf("bindings: primary %v backup %v; the backup's stays until it expires (R12 default)", b.primary.Registered(), b.backup.Registered())
	}
}

// TestTLSFailover: over TLS, with the server certificate checked against the
// configured roots and name, a refused primary fails over to the backup.
func TestTLSFailover(t *testing.T) {
	b := newBench(t, "tls", nil)
	b.line.Register()
	b.waitState("primary_registered", 3*time.Second)
	b.primary.Stop()
	b.line.Register()
	b.waitState("backup_registered", 3*time.Second)
	if !strings.HasPrefix(b.line.Status().ServerAddr, "TLS ") || !b.backup.Registered() {
		t.Errorf("status %+v, backup registered %v", b.line.Status(), b.backup.Registered())
	}
}

// TestTLSUnknownAuthority: a server whose certificate the line cannot
// verify is never registered with; the line ends all-failed with the reason.
func TestTLSUnknownAuthority(t *testing.T) {
	b := newBench(t, "tls", nil)
	other, _, err := runtimetest.SelfSignedTLS("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*runtimetest.Registrar{b.primary, b.backup} {
		r.Stop()
		r.TLS = other
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
	}
	b.line.Register()
	b.waitState("all_failed", 3*time.Second)
	if st := b.line.Status(); !strings.Contains(st.LastReason, "certificate") {
		t.Errorf("reason %q does not say the certificate was refused", st.LastReason)
	}
	if b.primary.Registered() || b.backup.Registered() {
		t.Error("registered with a server whose certificate failed verification")
	}
}

// TestFailureModesEveryTransport: R1 on UDP, TCP and TLS. A stopped primary
// (ICMP, or a refused connection), a silent one (no answer within the
// budget) and one answering 503 all fail over to the backup, and the status
// names the failure.
func TestFailureModesEveryTransport(t *testing.T) {
	modes := []struct {
		name   string
		fail   func(*runtimetest.Registrar)
		reason map[string]string // by network
	}{
		// A stopped TCP/TLS server closes the open connection (or refuses a new one).
		{"stopped", (*runtimetest.Registrar).Stop, map[string]string{"udp": "ICMP port unreachable", "tcp": "connection", "tls": "connection"}},
		{"silent", func(r *runtimetest.Registrar) { r.SetMode(runtimetest.Silent) }, map[string]string{"udp": "no answer", "tcp": "no answer", "tls": "no answer"}},
		{"503", func(r *runtimetest.Registrar) { r.SetAnswer(503, 0) }, map[string]string{"udp": "503", "tcp": "503", "tls": "503"}},
	}
	for _, network := range []string{"udp", "tcp", "tls"} {
		for _, m := range modes {
			t.Run(network+"/"+m.name, func(t *testing.T) {
				b := newBench(t, network, nil)
				b.line.Register()
				b.waitState("primary_registered", 3*time.Second)
				m.fail(b.primary)
				b.line.Register()
				b.waitState("backup_registered", 3*time.Second)
				if st := b.line.Status(); !strings.Contains(st.LastReason, m.reason[network]) {
					t.Errorf("reason %q lacks %q", st.LastReason, m.reason[network])
				}
				if !b.backup.Registered() {
					t.Error("no binding on the backup")
				}
			})
		}
	}
}

// TestTCPConnectTimeout: R1, a primary whose TCP connection never completes
// is unavailable when its budget ends (N=3, T1=20ms: 140ms), and the line
// registers on the backup.
func TestTCPConnectTimeout(t *testing.T) {
	hole, err := runtimetest.NewBlackhole()
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	b := newBench(t, "tcp", func(c *settings.LineConfig) { c.Servers[0].Port = &hole.Port })
	start := time.Now()
	b.line.Register()
	b.waitState("backup_registered", 3*time.Second)
	if took := b.event("timer.budget").At.Sub(start); took < 140*time.Millisecond || took > 140*time.Millisecond+slack {
		t.Errorf("verdict after %v, want the 140ms budget", took)
	}
	if st := b.line.Status(); !strings.Contains(st.LastReason, "no answer") {
		t.Errorf("reason %q", st.LastReason)
	}
}

// TestMessageFailsOver: R8 and I5 on real sockets. A MESSAGE to a primary
// whose port has closed fails over with the line, and reaches the backup
// only after the line registered there.
func TestMessageFailsOver(t *testing.T) {
	b := newBench(t, "udp", nil)
	b.line.Register()
	b.waitState("primary_registered", 3*time.Second)
	b.primary.Stop()
	req, err := b.line.Send(sip.MESSAGE, "sip:1002@example.test", "text/plain", []byte("fire door open"))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-req.Done():
	case <-time.After(3 * time.Second):
		t.Fatalf("the MESSAGE did not end; line %+v", b.line.Status())
	}
	if res := req.Result(); res.State != "done" || res.Code != 200 || res.Server != 2 {
		t.Fatalf("result %+v", res)
	}
	var order []string
	for _, s := range b.backup.Seen() {
		if len(order) == 0 || order[len(order)-1] != s.Method {
			order = append(order, s.Method)
		}
	}
	if !slices.Equal(order, []string{"REGISTER", "MESSAGE"}) {
		t.Errorf("the backup saw %v, want the line's REGISTER first (I5)", order)
	}
	if _, err := b.line.Send(sip.INVITE, "sip:1002@example.test", "", nil); !errors.Is(err, runtime.ErrMethod) {
		t.Errorf("Send(INVITE) = %v, want ErrMethod", err)
	}
}

// TestRemoveLineEndsItsRequests: removing a line ends every request it has
// in flight, not every other one.
func TestRemoveLineEndsItsRequests(t *testing.T) {
	b := newBench(t, "udp", nil)
	b.primary.SetMode(runtimetest.Silent)
	b.backup.SetMode(runtimetest.Silent)
	var reqs []*runtime.Request
	for range 3 {
		r, err := b.line.Send(sip.OPTIONS, "sip:1002@example.test", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, r)
	}
	b.agent.RemoveLine(b.line)
	for i, r := range reqs {
		select {
		case <-r.Done():
		case <-time.After(time.Second):
			t.Errorf("request %d still runs after its line was removed", i)
		}
	}
}

// TestServerPingAnswered: R8, a request from a configured server (an
// OPTIONS ping to the registered contact) is answered 200.
func TestServerPingAnswered(t *testing.T) {
	b := newBench(t, "udp", nil)
	b.line.Register()
	b.waitState("primary_registered", 3*time.Second)
	codes, err := b.primary.Ping(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(codes, []int{200}) {
		t.Fatalf("OPTIONS to the line's contact got %v, want [200]", codes)
	}
}

// TestTLSServerNameChecked: a certificate for another name is refused, even
// from a trusted CA.
func TestTLSServerNameChecked(t *testing.T) {
	b := newBench(t, "tls", func(c *settings.LineConfig) {
		for i := range c.Servers {
			c.Servers[i].TLSServerName = "sip.wrong.example"
		}
	})
	b.line.Register()
	b.waitState("all_failed", 3*time.Second)
	if st := b.line.Status(); !strings.Contains(st.LastReason, "certificate") {
		t.Errorf("reason %q does not say the certificate was refused", st.LastReason)
	}
	if b.primary.Registered() || b.backup.Registered() {
		t.Error("registered with a server whose certificate names another host")
	}
}
