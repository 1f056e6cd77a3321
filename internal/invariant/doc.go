// Package invariant judges a line's run against the invariants of
// docs/requirements.md (I1-I12): the one checker that every source of
// traces feeds. A Trace is plain data (the line's transitions, what each
// server received and granted, how the servers behaved, what the user did);
// Check and CheckConcurrent return each invariant the trace breaks, with
// when and why.
//
// Settings also carries the bounds the invariants are stated in (each
// server's retry budget, the transmissions of a request, a round through
// every server, the rate bound of I11), written from docs/requirements.md
// rather than taken from the model, so that the check is a second opinion.
// verify-capture judges a capture with these same bounds.
//
// The package performs no I/O and knows nothing of SIP stacks, sockets or
// the runtime: the property suite turns the simulated network's record into
// a Trace, and a capture's verdicts are held against it by the differential
// test of proptest.
//
//	tr := &invariant.Trace{Settings: s, Now: now, Transitions: steps, Sends: sends, Bindings: bindings, Env: env}
//	for _, v := range invariant.Check(tr) {
//		fmt.Println(v) // I2 at 41s: the current server failed while another was up ...
//	}
package invariant
