// Package locate finds where a SIP server given by name is, as RFC 3263
// says for a client (R20 of docs/requirements.md): NAPTR (when the
// transport is Auto), then SRV, then A and AAAA; with a port, A and AAAA;
// an IP address is used as it is. Every address of every target is a
// server, in the order RFC 3263 and RFC 2782 give.
//
// It knows DNS and SIP's use of it, not lines: one Lookup asks a Resolver
// and returns the targets with the shortest TTL of the records that gave
// them. How long answers are kept, and which line uses which, is the
// runtime's locator's.
package locate
