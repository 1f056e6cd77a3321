// Package wire is the SIP edge of the runtime: what a message is before
// any line sees it. It parses the bytes a socket read, checks every
// message where it enters (RFC 3261 8.1.1, 8.2) and reads, once, every
// header the program acts on into typed values: an Answer carries a
// response's granted expiries, Retry-After, Min-Expires, digest challenge
// and route set. It computes digest credentials, and builds the ACK and
// CANCEL that repeat a request's own headers.
//
// It knows SIP, not lines: nothing here knows a server list, a budget or
// a model. The runtime's drivers read the values it returns and never a
// header by name.
package wire
