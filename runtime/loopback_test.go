package runtime_test

import (
	"sync"
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/runtimetest"
)

// bench is a line on real loopback sockets between two embedded registrars.
type bench struct {
	t       *testing.T
	primary *runtimetest.Registrar
	backup  *runtimetest.Registrar
	net     *runtime.SocketNetwork
	agent   *runtime.Agent
	line    *runtime.Line
	mu      sync.Mutex
	log     []runtime.Transition
	changed chan struct{}
}

func newBench(t *testing.T, network string, tweak func(*runtime.LineConfig)) *bench {
	t.Helper()
	b := &bench{t: t, changed: make(chan struct{}, 100)}
	b.primary = &runtimetest.Registrar{Name: "primary", Network: network, User: "1001", Password: "secret"}
	b.backup = &runtimetest.Registrar{Name: "backup", Network: network, User: "1001", Password: "secret"}
	for _, r := range []*runtimetest.Registrar{b.primary, b.backup} {
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Stop)
	}
	transport := map[string]int{"udp": runtime.TransportUDP, "tcp": runtime.TransportTCP, "tls": runtime.TransportTLS}[network]
	port := func(r *runtimetest.Registrar) *int { p := r.Port(); return &p }
	cfg := runtime.LineConfig{
		Name: "test", User: "1001", Password: "secret", Domain: "example.test",
		Servers: []runtime.ServerConfig{
			{Addr: "127.0.0.1", Port: port(b.primary), Transport: &transport},
			{Addr: "127.0.0.1", Port: port(b.backup), Transport: &transport},
		},
		T1: runtime.Duration(20 * time.Millisecond), T2: runtime.Duration(160 * time.Millisecond),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	b.net = runtime.NewSocketNetwork(nil, nil)
	t.Cleanup(func() { b.net.Close() })
	b.agent = runtime.NewAgent(b.net, runtime.WithSeed(1), runtime.WithWatcher(func(tr runtime.Transition) {
		b.mu.Lock()
		b.log = append(b.log, tr)
		b.mu.Unlock()
		select {
		case b.changed <- struct{}{}:
		default:
		}
	}))
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
	if st := b.line.Status(); st.Server != 1 || !st.Registered || st.LastFailure != "transport.icmp" {
		t.Errorf("status %+v", st)
	}
	if !b.backup.Registered() {
		t.Error("the backup holds no binding")
	}
}
