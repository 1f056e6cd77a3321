// Package runtimetest holds helpers for testing the runtime and programs
// built on it, as net/http/httptest does for net/http:
//
//   - VirtualClock, a clock.Clock whose time moves only when told;
//   - SimNetwork, a transport.Network of simulated servers in virtual time
//     (up, ICMP unreachable, refusing, silent, answering 503 with
//     Retry-After, rejecting credentials);
//   - Registrar, a real SIP registrar with digest authentication on
//     loopback, which a test can stop, silence or make answer 503, and
//     Phone, the far end of calls: the fault lab's own servers;
//   - SelfSignedTLS and Blackhole, for TLS and TCP connect-timeout tests.
//
// A line in virtual time:
//
//	clock := runtimetest.NewVirtualClock(start)
//	network := runtimetest.NewSimNetwork(clock, 10*time.Millisecond)
//	network.Add(&runtimetest.SimServer{Endpoint: primary, Mode: runtimetest.SimSilent})
//	agent := runtime.NewAgent(network, runtime.WithClock(clock))
//	...
//	clock.Advance(time.Hour)
package runtimetest
