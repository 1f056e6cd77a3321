package runtime_test

import (
	"context"
	"fmt"
	"time"

	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/runtimetest"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
)

// A line whose primary's port is closed fails over to the backup on the
// ICMP error, in virtual time against simulated servers.
func Example() {
	clock := runtimetest.NewVirtualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	network := runtimetest.NewSimNetwork(clock, 10*time.Millisecond)
	port := 5060
	cfg := settings.LineConfig{Name: "lobby", User: "1001", Password: "secret", Servers: []settings.ServerConfig{
		{Addr: "127.0.1.1", Port: &port},
		{Addr: "127.0.1.2", Port: &port},
	}}
	network.Add(&runtimetest.SimServer{Endpoint: transport.Endpoint{Host: "127.0.1.1", Port: port}, Mode: runtimetest.SimICMP})
	network.Add(&runtimetest.SimServer{Endpoint: transport.Endpoint{Host: "127.0.1.2", Port: port}, Auth: true})

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

// What a server given by name stands for: its SRV targets in priority
// order, each address a server of the line (R20). The zone here is in
// memory; an agent for real servers asks DNS (NewDNSResolver).
func ExampleAgent_Locate() {
	zone, err := runtimetest.NewZone(
		"_sip._udp.example.com. 300 IN SRV 20 0 5060 pbx2.example.com.",
		"_sip._udp.example.com. 300 IN SRV 10 0 5060 pbx1.example.com.",
		"pbx1.example.com. 300 IN A 192.0.2.10",
		"pbx2.example.com. 300 IN A 192.0.2.20",
	)
	if err != nil {
		panic(err)
	}
	agent := runtime.NewAgent(runtimetest.NewSimNetwork(runtimetest.NewVirtualClock(time.Unix(0, 0)), time.Millisecond),
		runtime.WithResolver(zone))
	port, udp := 0, settings.TransportUDP
	targets, ttl, err := agent.Locate(context.Background(), settings.ServerConfig{Addr: "example.com", Port: &port, Transport: &udp})
	if err != nil {
		panic(err)
	}
	for _, t := range targets {
		fmt.Println(t.Endpoint, "via", t.SRV)
	}
	fmt.Println("kept for", ttl)
	// Output:
	// UDP 192.0.2.10:5060 via pbx1.example.com:5060
	// UDP 192.0.2.20:5060 via pbx2.example.com:5060
	// kept for 5m0s
}
