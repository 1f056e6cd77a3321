// Package labserver holds the SIP servers of the fault lab (sipfailover
// lab) and of the demo: a registrar with digest authentication (MD5 or
// SHA-256) that is also a record-routing proxy for calls, a registration
// database that a primary and a backup share as the seed's servers do, a
// far-end phone, and the faults a server can be put in as a real network
// shows them (kill, freeze, 503, 503 with Retry-After, drop).
//
// It knows SIP servers, not lines: it never imports the runtime, whose
// tests reach these servers through runtime/runtimetest.
package labserver
