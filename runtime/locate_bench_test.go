package runtime_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/runtimetest"
	"github.com/sipfailover/sipfailover/runtime/settings"
)

// BenchmarkLocatedFailover measures, on real loopback sockets, a manual
// registration round whose first server is down (ICMP) until the line is
// registered on the next one, with the servers given by address and by a
// domain name whose SRV records a DNS server on loopback serves. It
// reports the median round and the DNS questions asked per round: none,
// since the round takes its list from the answers the agent keeps (R20).
func BenchmarkLocatedFailover(b *testing.B) {
	for _, byName := range []bool{false, true} {
		b.Run(map[bool]string{false: "address", true: "name"}[byName], func(b *testing.B) {
			p1 := &runtimetest.Registrar{Name: "p1", User: "1001", Password: "secret"}
			p2 := &runtimetest.Registrar{Name: "p2", User: "1001", Password: "secret"}
			for _, r := range []*runtimetest.Registrar{p1, p2} {
				if err := r.Start(); err != nil {
					b.Fatal(err)
				}
				b.Cleanup(r.Stop)
			}
			z := zone(b, fmt.Sprintf("_sip._udp.example.test. 3600 IN SRV 10 0 %d p1.example.test.", p1.Port()),
				fmt.Sprintf("_sip._udp.example.test. 3600 IN SRV 20 0 %d p2.example.test.", p2.Port()),
				"p1.example.test. 3600 IN A 127.0.0.1", "p2.example.test. 3600 IN A 127.0.0.1")
			addr, stop, err := z.Serve("127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(stop)
			servers := []settings.ServerConfig{server("127.0.0.1", p1.Port(), settings.TransportUDP), server("127.0.0.1", p2.Port(), settings.TransportUDP)}
			if byName {
				servers = []settings.ServerConfig{server("example.test", 0, settings.TransportUDP)}
			}
			w := newBenchWith(b, nil, servers, nil, runtime.WithResolver(runtime.NewDNSResolver([]string{addr})))
			w.line.Register()
			w.waitState("primary_registered", 5*time.Second)
			p1.Stop()
			asked := len(z.Queries())
			var took []time.Duration
			for b.Loop() {
				w.line.Register()
				took = append(took, w.waitState("backup_registered", 5*time.Second))
			}
			b.ReportMetric(float64(len(z.Queries())-asked)/float64(len(took)), "dns-questions/round")
			reportMedian(b, took)
		})
	}
}
