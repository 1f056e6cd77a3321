// Package wire is the SIP edge of the runtime: what a message is before
// any line sees it. It parses the bytes a socket read, checks every
// message where it enters (RFC 3261 8.1.1, 8.2) and reads, once, every
// header the program acts on into typed values: an Answer carries a
// response's granted expiries, Retry-After, Min-Expires, digest challenge,
// route set and Flow-Timer (RFC 5626). It writes every message the program sends (a Request, the
// answers, and the ACK and CANCEL that repeat a request's own headers),
// computes digest credentials, and holds the rules of a client
// transaction: what an answer must repeat to match its request (Sent) and
// when the request goes again over UDP (Retransmission, RFC 3261 Timers E
// and A).
//
// It knows SIP, not lines: nothing here knows a server list, a budget or
// a model. The runtime's drivers read the values it returns and never
// read or write a header by name.
package wire
