// Package runtime drives the generated line machine (fsm.LineMachine, from
// model/line.yaml) against SIP servers. It is the only package that does I/O.
//
// The machine decides and the runtime performs. A Line feeds the machine
// events (a response, an ICMP error, a timer firing) and carries out the
// effects each step returns, through an unexported adapter that implements
// fsm.LineActions (send a REGISTER, send the probe, adopt the probe's
// registration ...), and keeps the model's timers on a Clock. A Line's
// exported methods are its API; the actions are the machine's. Nothing
// here sleeps or reads the wall clock in its logic, so tests run a line in
// virtual time.
//
// A line's calls (Line.Dial, and calls that any of its servers delivers)
// run on the generated machine of model/call.yaml, and their INVITEs and
// BYEs, like the line's out-of-dialog requests (Line.Send), on that of
// model/request.yaml, one per INVITE, BYE or MESSAGE: a new request goes
// only to a server the line is registered on (I5), a BYE first through the
// server its call was set up through (I10), and when that server is
// unavailable the line fails over first (R6, R7, R8).
//
// The drivers stand on packages of their own, each below them:
//
//   - runtime/transport carries the bytes: connected UDP sockets that see
//     ICMP, TCP and TLS streams, one shared local port. Its Network is the
//     seam that runtimetest.SimNetwork fills in virtual time for tests.
//   - runtime/wire is the SIP edge: it parses and checks every message
//     where it enters and reads each header the program acts on once, into
//     a wire.Answer the drivers read; it writes every message the program
//     sends, and holds a transaction's matching and retransmission rules.
//     The drivers never read or write a header by name.
//   - runtime/locate looks servers given by name up in DNS (RFC 3263:
//     NAPTR, SRV, A/AAAA); the Agent's locator runs those lookups off every
//     lock and keeps the answers for their TTL, and each address a name has
//     is a server of the line (R20). Agent.Locate shows what a name stands
//     for.
//   - runtime/settings is the settings file, its checks, and the mapping
//     of a line's settings onto the models' params.
//   - runtime/clock is the time and the timers: a Clock (the wall clock,
//     or a virtual one in tests) and the named timers of each machine.
//   - runtime/pace spaces out new requests to one server (R21).
//
// The runtime runs its own non-INVITE transactions, with
// github.com/emiago/sipgo for the messages: the model owns each request's
// budget and transmission cap (R3, R4, I4 of docs/requirements.md), which
// sipgo's package-global transaction timers cannot give per line, and
// connected UDP sockets turn ICMP port unreachable into an immediate
// failover (R1), which sipgo's unconnected sockets never see. A line in
// concurrent registration mode (R17) keeps a registration on every
// server at once (model/binding.yaml, model/concurrent.yaml).
//
//	network := transport.NewSocketNetwork(nil, logger)
//	agent := runtime.NewAgent(network, runtime.WithLogger(logger))
//	line, err := agent.AddLine(cfg) // cfg: a settings.LineConfig, validated here
//	line.Register()
//	fmt.Println(line.Status())      // state, server, last failure and reason (R14)
//	call, err := line.Dial("1002")      // at the line's domain, as a phone dials
//	...
//	call.Hangup()                   // the BYE fails over if it must (R7)
//	<-call.Done()
package runtime
