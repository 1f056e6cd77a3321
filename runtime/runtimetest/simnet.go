package runtimetest

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/stun/v3"
	"github.com/sipfailover/sipfailover/runtime/transport"
)

// SimMode is how a simulated server behaves.
type SimMode int

const (
	// SimUp answers: a 401 challenge first when Auth is set, then 200.
	SimUp SimMode = iota
	// SimICMP is down: UDP requests draw ICMP port unreachable (R1).
	SimICMP
	// SimRefused is down: TCP/TLS connections are refused (R1).
	SimRefused
	// SimSilent swallows every request (R1: no answer within the budget).
	SimSilent
	// SimAnswer answers every request with Code, and Retry-After if set.
	SimAnswer
	// SimRejectAuth challenges every request, so credentials never pass.
	SimRejectAuth
	// SimDeaf accepts a TCP or TLS connection and never reads from it:
	// requests vanish, and the line's network reports the connection
	// unreachable when a write has waited DeafTimeout (I11).
	SimDeaf
)

// DeafTimeout is how long a write to a SimDeaf server waits before the
// connection is reported unreachable, as transport.SocketNetwork's write
// deadline does.
const DeafTimeout = 3 * time.Second

// SimServer is one simulated server.
type SimServer struct {
	Endpoint   transport.Endpoint
	Mode       SimMode
	Code       int // for SimAnswer
	RetryAfter int // seconds, for SimAnswer
	Auth       bool
	Expires    int // granted expiry cap; 0 grants what is asked
	// A rogue registrar: when set, a 2xx to REGISTER carries GrantHeader
	// as its Expires header and GrantContact as the expires parameter of
	// the registering Contact, whatever was asked ("0", "-1", "4294967296").
	GrantHeader, GrantContact string
	// MinExpires, when set, answers a REGISTER asking less (but not 0)
	// with 423 Interval Too Brief and this Min-Expires (RFC 3261 10.2.8).
	MinExpires int
	// NonceLife, when set, makes a challenge's nonce good for this many
	// requests; credentials with another nonce, or one used up, get 401
	// with stale=true and a fresh nonce (RFC 7616 3.3).
	NonceLife int
	// Mangle, when set, strips this header from every answer: "CSeq",
	// "Call-ID", "From" ... (a broken server; the line must drop them).
	Mangle string
	// Behind makes the server an outbound proxy whose registrars may be
	// down (R22): a REGISTER whose Request-URI names a host of it is
	// answered with that host's code (408 a silent registrar, 500 one
	// that answered 503, RFC 3261 16.7), by the proxy, which is up.
	Behind map[string]int

	nonce       int // the current nonce's number
	nonceUses   int
	deafPending bool                     // a SimDeaf write is waiting for its deadline
	answered    map[string]*sip.Response // by branch and method: what a retransmission gets again
	Drop        int                      // percent of requests lost on the way
	Delay       time.Duration            // added to the network's round trip
	Ring        time.Duration            // an INVITE rings (180) this long before the far end answers
	Received    []SimRequest             // every request sent to the server, delivered or not
	Bindings    []SimBinding             // every binding the server granted or removed
	// Flow, when set, answers flow keep-alives while the server is up, as
	// a registrar that multiplexes STUN on its SIP port and pongs CRLF
	// pings does (RFC 5626 4.4); without it they go unanswered.
	Flow bool
	// FlowTimer, when set, is the Flow-Timer a 2xx to REGISTER carries:
	// how often, in seconds, the flow wants a keep-alive (RFC 5626 4.4.1).
	FlowTimer int
	// Keepalives are when each flow keep-alive reached the server, or was
	// refused: packets, not requests (I11 counts them apart).
	Keepalives []time.Duration
}

// SimBinding is a registration a server accepted: until Until (zero
// Until: removed by Expires 0).
type SimBinding struct {
	At     time.Duration
	CallID string
	Until  time.Duration
}

// SimRequest is one request sent to a simulated server.
type SimRequest struct {
	At         time.Duration // since the network was made
	Seq        int           // order among all the network's requests: sends at one instant differ here
	Method     string
	CallID     string
	Branch     string
	Expires    int // -1 when absent
	Auth       bool
	Delivered  bool         // false: ICMP, refused, or lost
	Answer     int          // status code the server sent, 0 for none
	RetryAfter int          // seconds, with a 503
	Route      []string     // the Route entries, in order
	Request    *sip.Request // the request as the server parsed it
}

// SimNetwork is a transport.Network in virtual time: requests reach simulated
// servers, and their answers, ICMP errors and refusals come back after RTT
// on the clock, on the goroutine that advances it. Runs are deterministic.
type SimNetwork struct {
	Clock *VirtualClock
	RTT   time.Duration

	mu      sync.Mutex
	start   time.Time
	handler transport.Handler
	servers map[transport.Endpoint]*SimServer
	rng     *rand.Rand
	calls   []*SimCall
	sent    int // requests taken, for SimRequest.Seq
	capture *SimCapture

	// Tamper, when set, rewrites each request the line sends before the
	// network takes it, and returns the sends to make instead, in order: a
	// bug planted in the phone, for tests that its checkers catch it.
	// Servers, the trace and the capture see only what Tamper returns.
	Tamper func(dst transport.Endpoint, msg []byte) []SimSend
}

// SimSend is one message sent to one endpoint.
type SimSend struct {
	Dst transport.Endpoint
	Msg []byte
}

// NewSimNetwork returns a network on clock with the given round trip.
func NewSimNetwork(clock *VirtualClock, rtt time.Duration) *SimNetwork {
	return &SimNetwork{Clock: clock, RTT: rtt, start: clock.Now(), servers: map[transport.Endpoint]*SimServer{},
		rng: rand.New(rand.NewPCG(1, 2))}
}

// where is the key of an endpoint: host, port and transport (not the TLS
// server name, which only a certificate check reads).
func where(e transport.Endpoint) transport.Endpoint {
	return transport.Endpoint{Host: e.Host, Port: e.Port, Transport: e.Transport}
}

// Add places a server at its endpoint.
func (n *SimNetwork) Add(s *SimServer) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.servers[where(s.Endpoint)] = s
}

// Forget is part of transport.Network; simulated servers hold no
// connections.
func (n *SimNetwork) Forget(transport.Endpoint) {}

// SetHandler is part of transport.Network.
func (n *SimNetwork) SetHandler(h transport.Handler) { n.handler = h }

// Local is part of transport.Network.
func (n *SimNetwork) Local(transport.Endpoint) (string, int) { return "192.0.2.10", 5060 }

// Send is part of transport.Network.
func (n *SimNetwork) Send(dst transport.Endpoint, msg []byte) error {
	if n.Tamper == nil {
		return n.send(dst, msg)
	}
	for _, s := range n.Tamper(dst, msg) {
		if err := n.send(s.Dst, s.Msg); err != nil {
			return err
		}
	}
	return nil
}

func (n *SimNetwork) send(dst transport.Endpoint, msg []byte) error {
	if transport.IsKeepalive(msg) {
		n.keepalive(dst, msg)
		return nil
	}
	parsed, err := sip.ParseMessage(msg)
	if err != nil {
		return fmt.Errorf("simnet: the runtime sent an unparsable message: %w", err)
	}
	req, ok := parsed.(*sip.Request)
	if !ok {
		return fmt.Errorf("simnet: the runtime sent a response")
	}
	s := n.arrive(dst, msg)
	if s == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.Clock.Now().Sub(n.start)
	n.sent++
	r := SimRequest{At: now, Seq: n.sent, Method: string(req.Method), Expires: -1, Request: req}
	if c := req.CallID(); c != nil {
		r.CallID = c.Value()
	}
	if v := req.Via(); v != nil {
		r.Branch, _ = v.Params.Get("branch")
	}
	if h := req.GetHeader("Expires"); h != nil {
		r.Expires, _ = strconv.Atoi(h.Value())
	}
	r.Auth = req.GetHeader("Authorization") != nil || req.GetHeader("Proxy-Authorization") != nil
	for _, h := range req.GetHeaders("Route") {
		r.Route = append(r.Route, h.Value())
	}
	rtt := n.RTT + s.Delay
	lost := s.Drop > 0 && n.rng.IntN(100) < s.Drop
	var res *sip.Response
	key := r.Branch + " " + r.Method
	prev, retransmitted := s.answered[key]
	switch {
	case retransmitted && !lost && s.Mode != SimICMP && s.Mode != SimRefused && s.Mode != SimDeaf && req.Method != sip.INVITE:
		// A server's transaction answers a retransmission with the answer
		// it gave (RFC 3261 17.2.2), without doing the request again.
		r.Delivered = true
		res = prev
	case s.Mode == SimICMP:
		n.unreachable(dst, msg, rtt, errICMP)
	case s.Mode == SimRefused:
		n.unreachable(dst, msg, rtt, errRefused)
	case s.Mode == SimDeaf:
		if !s.deafPending {
			s.deafPending = true
			c := n.capture
			n.at(DeafTimeout, func() {
				n.mu.Lock()
				s.deafPending = false
				n.mu.Unlock()
				if c != nil {
					c.abort(n, dst)
				}
				n.handler.HandleUnreachable(dst, &transport.Error{Dst: dst, Err: errDeaf})
			})
		}
	case lost:
	case s.Mode == SimSilent:
		r.Delivered = true
	case s.Mode == SimAnswer && req.Method == sip.ACK: // an ACK has no answer
		r.Delivered = true
	case s.Mode == SimAnswer:
		r.Delivered = true
		res = sip.NewResponseFromRequest(req, s.Code, fmt.Sprintf("Answer %d", s.Code), nil)
		if s.RetryAfter > 0 {
			res.AppendHeader(sip.NewHeader("Retry-After", strconv.Itoa(s.RetryAfter)))
			r.RetryAfter = s.RetryAfter
		}
	case s.Mode == SimUp && req.Method == sip.REGISTER && s.Behind[req.Recipient.Host] != 0:
		r.Delivered = true
		code := s.Behind[req.Recipient.Host]
		res = sip.NewResponseFromRequest(req, code, fmt.Sprintf("Registrar %d", code), nil)
	case s.Mode == SimRejectAuth, s.Mode == SimUp && s.Auth && !r.Auth && req.Method == sip.REGISTER:
		r.Delivered = true
		res = challengeFor(req, s.nonceValue(), false)
	case s.Mode == SimUp && s.NonceLife > 0 && r.Auth && req.Method == sip.REGISTER && !s.useNonce(req):
		r.Delivered = true
		res = challengeFor(req, s.nonceValue(), true)
	case s.Mode == SimUp && req.Method == sip.REGISTER && r.Expires > 0 && r.Expires < s.MinExpires:
		r.Delivered = true
		res = sip.NewResponseFromRequest(req, 423, "Interval Too Brief", nil)
		res.AppendHeader(sip.NewHeader("Min-Expires", strconv.Itoa(s.MinExpires)))
	case req.Method == sip.INVITE || req.Method == sip.ACK || req.Method == sip.BYE || req.Method == sip.CANCEL:
		r.Delivered = true
		res = n.farEnd(s, req, rtt)
	default: // up
		r.Delivered = true
		res = sip.NewResponseFromRequest(req, 200, "OK", nil)
		if req.Method == sip.REGISTER {
			exp := max(r.Expires, 0)
			if s.Expires > 0 && exp > s.Expires {
				exp = s.Expires
			}
			switch {
			case s.GrantHeader != "" || s.GrantContact != "":
				if s.GrantHeader != "" {
					res.AppendHeader(sip.NewHeader("Expires", s.GrantHeader))
				}
				if c := req.Contact(); c != nil && s.GrantContact != "" {
					res.AppendHeader(sip.NewHeader("Contact", "<"+c.Address.String()+">;expires="+s.GrantContact))
				}
				exp, _ = strconv.Atoi(cmp.Or(s.GrantContact, s.GrantHeader))
			default:
				res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(exp)))
			}
			if s.FlowTimer > 0 && exp > 0 {
				res.AppendHeader(sip.NewHeader("Flow-Timer", strconv.Itoa(s.FlowTimer)))
			}
			b := SimBinding{At: now, CallID: r.CallID}
			if exp > 0 {
				b.Until = now + time.Duration(exp)*time.Second
			}
			s.Bindings = append(s.Bindings, b)
		}
	}
	if res != nil && !retransmitted && req.Method != sip.INVITE {
		if s.answered == nil {
			s.answered = map[string]*sip.Response{}
		}
		s.answered[key] = res
	}
	if res != nil {
		if s.Mangle != "" {
			res.RemoveHeader(s.Mangle)
		}
		r.Answer = res.StatusCode
		if h := res.GetHeader("Retry-After"); h != nil && retransmitted {
			r.RetryAfter, _ = strconv.Atoi(h.Value())
		}
		for _, name := range []string{"Via", "From", "To", "Call-ID", "CSeq"} {
			if res.GetHeader(name) == nil { // an answer the line must drop: as good as none
				r.Answer, r.RetryAfter = 0, 0
			}
		}
		n.reply(dst, res, rtt)
	}
	s.Received = append(s.Received, r)
	return nil
}

// arrive puts what the line sends dst in the capture, and returns dst's
// server; none at that address is a closed port, which draws ICMP.
func (n *SimNetwork) arrive(dst transport.Endpoint, msg []byte) *SimServer {
	n.mu.Lock()
	s := n.servers[where(dst)]
	c := n.capture
	closed := s == nil || s.Mode == SimICMP || s.Mode == SimRefused
	n.mu.Unlock()
	if c != nil {
		c.sent(n, dst, msg, closed)
	}
	if s == nil {
		n.unreachable(dst, msg, n.RTT, errICMP)
	}
	return s
}

// keepalive takes a flow keep-alive to dst: a closed port draws ICMP or a
// refusal as a request does; a server up with Flow set answers it after
// the round trip (a STUN success with the request's transaction ID, or a
// pong); a TCP or TLS server that is not closed accepts the connection.
func (n *SimNetwork) keepalive(dst transport.Endpoint, msg []byte) {
	s := n.arrive(dst, msg)
	if s == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	s.Keepalives = append(s.Keepalives, n.Clock.Now().Sub(n.start))
	rtt := n.RTT + s.Delay
	switch {
	case s.Mode == SimICMP:
		n.unreachable(dst, msg, rtt, errICMP)
		return
	case s.Mode == SimRefused:
		n.unreachable(dst, msg, rtt, errRefused)
		return
	case dst.Transport != transport.UDP:
		n.at(rtt/2, func() { n.handler.HandleFlow(dst, transport.FlowAnswer{Kind: transport.Accepted}) })
	}
	if !s.Flow || s.Mode == SimSilent || s.Mode == SimDeaf || (s.Drop > 0 && n.rng.IntN(100) < s.Drop) {
		return
	}
	ans := transport.FlowAnswer{Kind: transport.Pong}
	answer := []byte("\r\n")
	if dst.Transport == transport.UDP {
		if answer = transport.STUNSuccessTo(msg, stun.XORMappedAddress{IP: net.IPv4(192, 0, 2, 10), Port: 5060}); answer == nil {
			return // a bare CRLF datagram: nobody answers it
		}
		ans = transport.FlowAnswer{Kind: transport.STUNSuccess, TxID: [12]byte(answer[8:20])}
	}
	c := n.capture
	n.at(rtt, func() {
		if c != nil {
			c.answered(n, dst, answer)
		}
		n.handler.HandleFlow(dst, ans)
	})
}

func challengeFor(req *sip.Request, nonce string, stale bool) *sip.Response {
	res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
	v := `Digest realm="sim", nonce="` + nonce + `", algorithm=MD5, qop="auth"`
	if stale {
		v += ", stale=true"
	}
	res.AppendHeader(sip.NewHeader("WWW-Authenticate", v))
	return res
}

// nonceValue is the server's current nonce.
func (s *SimServer) nonceValue() string { return "n" + strconv.Itoa(s.nonce) }

// useNonce says whether the credentials of req name the current nonce with
// uses left, and counts the use; otherwise the nonce is renewed.
func (s *SimServer) useNonce(req *sip.Request) bool {
	h := req.GetHeader("Authorization")
	if h != nil && strings.Contains(h.Value(), `nonce="`+s.nonceValue()+`"`) && s.nonceUses < s.NonceLife {
		s.nonceUses++
		return true
	}
	s.nonce++
	s.nonceUses = 0
	return false
}

func (n *SimNetwork) reply(from transport.Endpoint, res *sip.Response, rtt time.Duration) {
	// Re-parse, as the real network does, so the runtime sees typed headers.
	wire := []byte(res.String())
	parsed, err := sip.ParseMessage(wire)
	if err != nil {
		panic(fmt.Sprintf("simnet: bad response: %v", err))
	}
	c := n.capture
	n.at(rtt, func() {
		if c != nil {
			c.answered(n, from, wire)
		}
		n.handler.HandleResponse(from, parsed.(*sip.Response))
	})
}

// unreachable tells the line, after rtt, that dst's port is closed: ICMP
// port unreachable for msg over UDP, a refused or reset connection over TCP.
func (n *SimNetwork) unreachable(dst transport.Endpoint, msg []byte, rtt time.Duration, err error) {
	c := n.capture
	n.at(rtt, func() {
		if c != nil {
			c.unreachable(n, dst, msg)
		}
		n.handler.HandleUnreachable(dst, &transport.Error{Dst: dst, Err: err})
	})
}

func (n *SimNetwork) at(d time.Duration, f func()) { n.Clock.AfterFunc(d, f) }

// Seed sets the random source that decides which requests are lost.
func (n *SimNetwork) Seed(seed uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.rng = rand.New(rand.NewPCG(seed, seed+1))
}

// Bindings returns the bindings the server at e granted or removed.
func (n *SimNetwork) Bindings(e transport.Endpoint) []SimBinding {
	n.mu.Lock()
	defer n.mu.Unlock()
	if s := n.servers[where(e)]; s != nil {
		return append([]SimBinding(nil), s.Bindings...)
	}
	return nil
}

// Server returns the server at e.
func (n *SimNetwork) Server(e transport.Endpoint) *SimServer {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.servers[where(e)]
}

// Requests returns what the server at e received.
func (n *SimNetwork) Requests(e transport.Endpoint) []SimRequest {
	n.mu.Lock()
	defer n.mu.Unlock()
	if s := n.servers[where(e)]; s != nil {
		return append([]SimRequest(nil), s.Received...)
	}
	return nil
}

// Set changes a server's behaviour.
func (n *SimNetwork) Set(e transport.Endpoint, f func(*SimServer)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if s := n.servers[where(e)]; s != nil {
		f(s)
	}
}

// The errors the kernel gives: ICMP unreachable on a connected UDP socket
// and a refused TCP connection both read as ECONNREFUSED.
var (
	errICMP    error = syscall.ECONNREFUSED
	errRefused error = syscall.ECONNREFUSED
	errDeaf    error = fmt.Errorf("write: %w", os.ErrDeadlineExceeded)
)

// ParseSimMode reads a mode as scenario scripts write it.
func ParseSimMode(words []string) (SimMode, int, int, error) {
	if len(words) == 0 {
		return 0, 0, 0, fmt.Errorf("missing mode")
	}
	switch words[0] {
	case "up":
		return SimUp, 0, 0, nil
	case "icmp":
		return SimICMP, 0, 0, nil
	case "refused":
		return SimRefused, 0, 0, nil
	case "silent":
		return SimSilent, 0, 0, nil
	case "reject-auth":
		return SimRejectAuth, 0, 0, nil
	case "deaf":
		return SimDeaf, 0, 0, nil
	case "answer":
		if len(words) < 2 {
			return 0, 0, 0, fmt.Errorf("answer needs a status code")
		}
		code, err := strconv.Atoi(words[1])
		if err != nil || code < 200 || code > 699 {
			return 0, 0, 0, fmt.Errorf("bad status code %q", words[1])
		}
		retry := 0
		if len(words) >= 4 && words[2] == "retry-after" {
			if retry, err = strconv.Atoi(strings.TrimSuffix(words[3], "s")); err != nil {
				return 0, 0, 0, fmt.Errorf("bad retry-after %q", words[3])
			}
		}
		return SimAnswer, code, retry, nil
	}
	return 0, 0, 0, fmt.Errorf("unknown mode %q (up, icmp, refused, silent, reject-auth, deaf, answer CODE [retry-after N])", words[0])
}

// ParseSimRogue reads how a server misbehaves, as scenario scripts write it
// after "server NAME", and returns the change it makes:
//
//	grant header V | grant contact V   a 2xx to REGISTER grants V ("0", "-1" ...)
//	min-expires N                      423 to a REGISTER asking less than N
//	nonce-life N                       a nonce is good for N requests, then stale
//	mangle HEADER                      every answer lacks HEADER
//	sane                               none of these
//	flow on | flow off                 flow keep-alives answered or not (Flow)
//	registrar HOST CODE | registrar HOST up   as an outbound proxy, answers a REGISTER to HOST with CODE (Behind)
func ParseSimRogue(words []string) (func(*SimServer), error) {
	num := func() (int, error) {
		if len(words) != 2 {
			return 0, fmt.Errorf("%s needs one number", words[0])
		}
		v, err := strconv.Atoi(words[1])
		if err != nil || v < 0 {
			return 0, fmt.Errorf("%s: bad number %q", words[0], words[1])
		}
		return v, nil
	}
	switch {
	case len(words) == 0:
		return nil, fmt.Errorf("missing rogue behaviour")
	case words[0] == "sane":
		return func(s *SimServer) {
			s.GrantHeader, s.GrantContact, s.MinExpires, s.NonceLife, s.Mangle = "", "", 0, 0, ""
		}, nil
	case words[0] == "grant" && len(words) == 3 && words[1] == "header":
		return func(s *SimServer) { s.GrantHeader = words[2] }, nil
	case words[0] == "grant" && len(words) == 3 && words[1] == "contact":
		return func(s *SimServer) { s.GrantContact = words[2] }, nil
	case words[0] == "min-expires":
		v, err := num()
		return func(s *SimServer) { s.MinExpires = v }, err
	case words[0] == "nonce-life":
		v, err := num()
		return func(s *SimServer) { s.NonceLife = v }, err
	case words[0] == "mangle" && len(words) == 2:
		return func(s *SimServer) { s.Mangle = words[1] }, nil
	case words[0] == "flow" && len(words) == 2 && (words[1] == "on" || words[1] == "off"):
		return func(s *SimServer) { s.Flow = words[1] == "on" }, nil
	case words[0] == "flow-timer":
		v, err := num()
		return func(s *SimServer) { s.FlowTimer = v }, err
	case words[0] == "registrar" && len(words) == 3:
		host := words[1]
		if words[2] == "up" {
			return func(s *SimServer) { delete(s.Behind, host) }, nil
		}
		code, err := strconv.Atoi(words[2])
		if err != nil || code < 300 || code > 699 {
			return nil, fmt.Errorf("registrar %s: %q is no failure code (300-699) or up", host, words[2])
		}
		return func(s *SimServer) {
			if s.Behind == nil {
				s.Behind = map[string]int{}
			}
			s.Behind[host] = code
		}, nil
	}
	return nil, fmt.Errorf("unknown behaviour %q (grant header|contact V, min-expires N, nonce-life N, mangle HEADER, sane, flow on|off, flow-timer N, registrar HOST CODE|up)", strings.Join(words, " "))
}
