// Package transport carries SIP messages between the runtime and its
// servers: connected UDP sockets that see ICMP port unreachable (R1 of
// docs/requirements.md), TCP and TLS connections with bounded write
// queues that never block a sender, and one local port shared by every
// UDP socket (SO_REUSEPORT) so that every server sees one Contact.
//
// Network is the seam: SocketNetwork is the real one, and
// runtimetest.SimNetwork simulates servers in virtual time for tests.
// What a Network hears goes to a Handler, parsed and checked by
// runtime/wire on the way (Receive); what it cannot deliver is an *Error
// that names the server and says why, in the words a person reads
// ("ICMP port unreachable from UDP 192.0.2.1:5060").
//
// It knows addresses and bytes, not lines or transactions: it never
// retransmits, times out or decides that a server is unavailable. Those
// are the runtime's drivers', which run the models that own the budgets.
package transport
