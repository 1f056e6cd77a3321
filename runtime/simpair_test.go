package runtime_test

import (
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/runtimetest"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
)

// simStart is when a simPair's clock, and its network, begin.
var simStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// simPair is one line on a simulated primary and backup (192.0.2.1 and
// 192.0.2.2, port 5060) in virtual time, not yet registered.
type simPair struct {
	clock           *runtimetest.VirtualClock
	network         *runtimetest.SimNetwork
	primary, backup transport.Endpoint
	agent           *runtime.Agent
	line            *runtime.Line
}

// newSimPair builds the pair over transport tr with round trip rtt; tweak,
// when set, changes the line's settings before it is added.
func newSimPair(t *testing.T, tr int, rtt time.Duration, tweak func(*settings.LineConfig), opts ...runtime.Option) *simPair {
	t.Helper()
	p := &simPair{clock: runtimetest.NewVirtualClock(simStart)}
	p.network = runtimetest.NewSimNetwork(p.clock, rtt)
	p.primary = transport.Endpoint{Host: "192.0.2.1", Port: 5060, Transport: tr}
	p.backup = transport.Endpoint{Host: "192.0.2.2", Port: 5060, Transport: tr}
	p.network.Add(&runtimetest.SimServer{Endpoint: p.primary})
	p.network.Add(&runtimetest.SimServer{Endpoint: p.backup})
	p.agent = runtime.NewAgent(p.network, append([]runtime.Option{runtime.WithClock(p.clock), runtime.WithSeed(1)}, opts...)...)
	port := 5060
	cfg := settings.LineConfig{Name: "l", User: "1001", Password: "pw",
		Servers: []settings.ServerConfig{{Addr: p.primary.Host, Port: &port, Transport: &tr}, {Addr: p.backup.Host, Port: &port, Transport: &tr}}}
	if tweak != nil {
		tweak(&cfg)
	}
	var err error
	if p.line, err = p.agent.AddLine(cfg); err != nil {
		t.Fatal(err)
	}
	return p
}
