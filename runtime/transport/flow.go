package transport

import (
	"bytes"

	"github.com/pion/stun/v3"
)

// Flow keep-alives (RFC 5626 4.4): a packet to a server that is no SIP
// message and starts no transaction. Over TCP and TLS it is a CRLFCRLF
// "ping", which a server answers with a CRLF "pong"; over UDP a STUN
// Binding request to the server's SIP port (RFC 5389), which a server that
// multiplexes STUN there answers. A server whose port is closed answers
// neither, but draws ICMP port unreachable or a reset, which come to the
// Handler's HandleUnreachable like any other.

// Ping is the CRLFCRLF keep-alive of a stream (RFC 5626 4.4.1).
var Ping = []byte("\r\n\r\n")

// CRLF is the bare CRLF datagram sent over UDP where STUN is not wanted:
// nobody answers it, but a closed port draws ICMP.
var CRLF = []byte("\r\n")

// FlowKind says what came back to a flow keep-alive.
type FlowKind uint8

const (
	// Pong is a CRLF on a stream, between messages (RFC 5626 4.4.1).
	Pong FlowKind = iota
	// STUNSuccess is a STUN Binding success response (RFC 5389 7.3.3).
	STUNSuccess
	// Accepted is a TCP or TLS connection that the server accepted.
	Accepted
)

func (k FlowKind) String() string {
	return [...]string{"pong", "STUN success", "connection accepted"}[k]
}

// FlowAnswer is what a server sent back on a flow: for STUNSuccess, with
// the transaction ID of the request it answers, which the line checks
// against the one it sent.
type FlowAnswer struct {
	Kind FlowKind
	TxID [stun.TransactionIDSize]byte
}

// STUNRequest is a STUN Binding request with a new random transaction ID
// and a FINGERPRINT, which tells it apart from SIP on a shared port (RFC
// 5389 7.1, 8).
func STUNRequest() (msg []byte, id [stun.TransactionIDSize]byte) {
	m := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	return m.Raw, m.TransactionID
}

// STUNSuccessTo is the Binding success response a server sends to req,
// with the address it saw in XOR-MAPPED-ADDRESS; nil when req is no STUN
// Binding request. Simulated servers answer with it.
func STUNSuccessTo(req []byte, seen stun.XORMappedAddress) []byte {
	m := &stun.Message{Raw: append([]byte(nil), req...)}
	if err := m.Decode(); err != nil || m.Type != stun.BindingRequest {
		return nil
	}
	res, err := stun.Build(stun.NewTransactionIDSetter(m.TransactionID), stun.BindingSuccess, &seen, stun.Fingerprint)
	if err != nil {
		return nil
	}
	return res.Raw
}

// IsKeepalive says whether data is a flow keep-alive a client sends: a
// STUN Binding request, or nothing but CRLFs.
func IsKeepalive(data []byte) bool {
	if stun.IsMessage(data) {
		m := &stun.Message{Raw: append([]byte(nil), data...)}
		return m.Decode() == nil && m.Type == stun.BindingRequest
	}
	return len(data) > 0 && len(bytes.Trim(data, "\r\n")) == 0
}

// flowAnswer reads a datagram that is a STUN message: ok is false for any
// that is not a well-formed Binding success response, which is dropped.
func flowAnswer(data []byte) (a FlowAnswer, ok bool) {
	m := &stun.Message{Raw: append([]byte(nil), data...)}
	if m.Decode() != nil || m.Type != stun.BindingSuccess {
		return a, false
	}
	if m.Contains(stun.AttrFingerprint) && stun.Fingerprint.Check(m) != nil {
		return a, false
	}
	return FlowAnswer{Kind: STUNSuccess, TxID: m.TransactionID}, true
}

// pongs counts the CRLFs at the start of data and returns the rest: the
// pongs of RFC 5626 4.4.1 (a bare LF too, as some servers write it).
func pongs(data []byte) (int, []byte) {
	n := 0
	for {
		switch {
		case bytes.HasPrefix(data, []byte("\r\n")):
			data = data[2:]
			n++
		case bytes.HasPrefix(data, []byte("\n")):
			data = data[1:]
			n++
		default:
			return n, data
		}
	}
}

// pongsIn takes the pongs off the front of a stream's unread bytes, read
// at a message boundary, where no message can begin with a CRLF (RFC 3261
// 7.5 lets them precede one), and counts them.
func pongsIn(buf *bytes.Buffer) int {
	n, rest := pongs(buf.Bytes())
	buf.Next(buf.Len() - len(rest))
	return n
}
