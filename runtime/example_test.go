package runtime_test

import (
	"fmt"
	"time"

	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/runtimetest"
)

// A line whose primary's port is closed fails over to the backup on the
// ICMP error, in virtual time against simulated servers.
func Example() {
	clock := runtimetest.NewVirtualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	network := runtimetest.NewSimNetwork(clock, 10*time.Millisecond)
	port := 5060
	cfg := runtime.LineConfig{Name: "lobby", User: "1001", Password: "secret", Servers: []runtime.ServerConfig{
		{Addr: "127.0.1.1", Port: &port},
		{Addr: "127.0.1.2", Port: &port},
	}}
	network.Add(&runtimetest.SimServer{Endpoint: runtime.Endpoint{Host: "127.0.1.1", Port: port}, Mode: runtimetest.SimICMP})
	network.Add(&runtimetest.SimServer{Endpoint: runtime.Endpoint{Host: "127.0.1.2", Port: port}, Auth: true})

	agent := runtime.NewAgent(network, runtime.WithClock(clock), runtime.WithWatcher(func(t runtime.Transition) {
		if t.From != t.To {
			fmt.Printf("%-18s -> %-18s on %s\n", t.From, t.To, t.Event)
		}
	}))
	line, err := agent.AddLine(cfg)
	if err != nil {
		panic(err)
	}
	line.Register()
	clock.Advance(time.Second)
	st := line.Status()
	fmt.Println(st.State, st.ServerAddr, "after:", st.LastReason)
	// Output:
	// idle               -> registering        on user.register
	// registering        -> retrying           on transport.icmp
	// retrying           -> backup_registered  on resp.2xx
	// backup_registered UDP 127.0.1.2:5060 after: ICMP port unreachable from UDP 127.0.1.1:5060
}
