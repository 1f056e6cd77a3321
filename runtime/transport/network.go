package transport

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/stun/v3"

	"github.com/sipfailover/sipfailover/runtime/wire"
)

// The transports, numbered as the settings number them (settings.TransportUDP
// ...), which are the seed's SIPN Transport codes.
const (
	UDP = 0
	TCP = 1
	TLS = 3
)

// Endpoint is one server as the network reaches it. Its Host is an IP
// address: the agent locates servers given by name (R20) before any
// request goes out, so no lookup happens under the network's lock.
type Endpoint struct {
	Host       string
	Port       int
	Transport  int    // UDP, TCP or TLS: the settings' transport codes
	ServerName string // TLS: the name the certificate must carry
}

// Addr is host:port.
func (e Endpoint) Addr() string { return net.JoinHostPort(e.Host, strconv.Itoa(e.Port)) }

// TransportName is UDP, TCP or TLS, as Via writes it.
func (e Endpoint) TransportName() string {
	switch e.Transport {
	case TCP:
		return "TCP"
	case TLS:
		return "TLS"
	}
	return "UDP"
}

func (e Endpoint) String() string { return e.TransportName() + " " + e.Addr() }

// Network carries requests to servers and what comes back. It is the seam
// between the runtime and the world: SocketNetwork uses real sockets, and
// the simulated network of runtimetest plugs in here for tests.
type Network interface {
	// Send transmits one request to dst. An error here means dst cannot be
	// reached now (a *Error); later failures go to the Handler.
	Send(dst Endpoint, msg []byte) error
	// Local returns the address this network uses towards dst, for Via and
	// Contact.
	Local(dst Endpoint) (host string, port int)
	// SetHandler says where responses and failures go.
	SetHandler(h Handler)
	// Forget drops any connection to dst after its server was found
	// unavailable; the next Send opens a new one (RFC 5626 4.4.1).
	Forget(dst Endpoint)
}

// Handler receives what a Network hears. Calls may come from any goroutine.
type Handler interface {
	// HandleResponse is a response from dst.
	HandleResponse(from Endpoint, res *sip.Response)
	// HandleUnreachable reports that dst cannot be reached: ICMP unreachable
	// for UDP (R1), or a TCP/TLS connection refused, reset or failed.
	HandleUnreachable(dst Endpoint, err *Error)
	// HandleRequest is a request from the server at from (an OPTIONS ping,
	// an incoming call, a BYE); reply sends a response back the way the
	// request came.
	HandleRequest(from Endpoint, req *sip.Request, reply func([]byte))
	// HandleUnparsable reports bytes from the server at from that are no
	// SIP message.
	HandleUnparsable(from Endpoint, err error)
	// HandleFlow is an answer to a flow keep-alive from the server at from:
	// a pong, a STUN Binding success, or a connection accepted.
	HandleFlow(from Endpoint, a FlowAnswer)
}

// Receive parses one datagram from the server at from and hands it to h:
// a SIP message, or the answer to a flow keep-alive. A STUN message that
// answers nothing of ours, and a datagram of CRLFs (a server's own
// keep-alive), are dropped.
func Receive(h Handler, from Endpoint, data []byte, reply func([]byte)) {
	if stun.IsMessage(data) {
		if a, ok := flowAnswer(data); ok {
			h.HandleFlow(from, a)
		}
		return
	}
	if n, rest := pongs(data); n > 0 && len(rest) == 0 {
		return
	}
	msg, err := wire.Parse(data)
	if err != nil {
		h.HandleUnparsable(from, err)
		return
	}
	dispatch(h, from, msg, reply)
}

// dispatch hands a parsed message to h.
func dispatch(h Handler, from Endpoint, msg sip.Message, reply func([]byte)) {
	switch m := msg.(type) {
	case *sip.Response:
		h.HandleResponse(from, m)
	case *sip.Request:
		h.HandleRequest(from, m, reply)
	}
}

// errConnRefused is how Linux reports ICMP port or host unreachable on a
// connected UDP socket, and a refused TCP connection.
var errConnRefused = syscall.ECONNREFUSED

// Error says why a server could not be reached.
type Error struct {
	Dst Endpoint
	Err error
}

func (e *Error) Error() string {
	switch {
	case e.Dst.Transport == UDP && errors.Is(e.Err, errConnRefused):
		return fmt.Sprintf("ICMP port unreachable from %s", e.Dst)
	case errors.Is(e.Err, io.EOF):
		return fmt.Sprintf("%s: connection closed by the server", e.Dst)
	case errors.Is(e.Err, syscall.ECONNRESET):
		return fmt.Sprintf("%s: connection reset by the server", e.Dst)
	}
	return fmt.Sprintf("%s: %v", e.Dst, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }
