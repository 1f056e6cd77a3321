package labserver

import (
	"context"
	"crypto/tls"

	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// Mode is how a Registrar treats requests.
type Mode int

const (
	// Up answers: 401 with a digest challenge, then 200 (or 401 again for a
	// wrong password).
	Up Mode = iota
	// Silent reads requests and never answers (a hung server, R1).
	Silent
	// Answering answers every request with a fixed code (503, 500, 403 ...)
	// and, if set, Retry-After (R1).
	Answering
)

// Seen is one request a registrar received.
type Seen struct {
	At         time.Time
	Method     string
	CallID     string
	CSeq       uint32
	Expires    int // -1 when absent
	Authorized bool
	Answer     int      // status sent, 0 for none
	RequestURI string   // as written
	Route      []string // the Route entries, in order
	Contact    string   // the Contact header's value, "" when absent
	Via        string   // the top Via's value
	Source     string   // host:port the request came from
	From       string   // the From's address of record, user@host
}

// Registrar is a SIP registrar with digest authentication (MD5 or SHA-256)
// listening on loopback, for tests and the demo. It is a record-routing
// proxy too: an INVITE for a registered user goes to the user's contact,
// and the requests of the dialog follow through it (see proxy.go).
type Registrar struct {
	Name      string
	Network   string // "udp", "tcp" or "tls"
	Addr      string // host:port once started; a restart keeps it
	User      string
	Password  string
	Users     map[string]string // more users and their passwords
	Algorithm string            // "MD5" (default) or "SHA-256"
	TLS       *tls.Config
	// MaxExpires caps the expiry granted; 0 grants what is asked.
	MaxExpires int
	// Location is the registration database; servers that share one reach
	// each other's users, as the seed's primary and backup do. Nil: a
	// database of its own.
	Location *Location

	mu         sync.Mutex
	server     *listening        // nil while stopped
	client     *sipgo.Client     // forwards calls and pings, from the listening socket
	contacts   map[string]string // Call-ID -> Contact URI of the binding
	mode       Mode
	code       int
	retryAfter int
	nonce      string
	seen       []Seen
	bindings   map[string]time.Time // Call-ID -> expiry
	fault      Fault
	hole       *Blackhole    // a Drop over TCP
	delay      time.Duration // a Slow server's, before every answer
}

// Start listens (on Addr, or a free loopback port the first time) and serves
// until Stop.
func (r *Registrar) Start() error {
	r.mu.Lock()
	if r.Network == "" {
		r.Network = "udp"
	}
	if r.Addr == "" {
		r.Addr = "127.0.0.1:0"
	}
	if r.nonce == "" {
		r.nonce = strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	if r.bindings == nil {
		r.bindings = map[string]time.Time{}
	}
	addr, network := r.Addr, r.Network
	r.mu.Unlock()

	l, err := listen(r.Name, network, addr, r.TLS, func(srv *sipgo.Server) {
		srv.OnRegister(r.handle)
		srv.OnOptions(r.handle)
		srv.OnMessage(r.handle)
		for _, m := range []sip.RequestMethod{sip.INVITE, sip.ACK, sip.BYE, sip.CANCEL} {
			srv.OnRequest(m, r.handleCall)
		}
	})
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.Addr, r.server, r.client = l.addr, l, l.client
	r.mu.Unlock()
	return nil
}

// Stop closes the listener: UDP requests to it then draw ICMP port
// unreachable, TCP connections are refused.
func (r *Registrar) Stop() {
	r.mu.Lock()
	l := r.server
	r.server = nil
	r.mu.Unlock()
	if l != nil {
		l.stop()
	}
}

// Host and Port of the listener.
func (r *Registrar) Host() string { h, _, _ := net.SplitHostPort(r.Addr); return h }

// Port of the listener.
func (r *Registrar) Port() int {
	_, p, _ := net.SplitHostPort(r.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

// SetMode changes how requests are treated from now on.
func (r *Registrar) SetMode(m Mode) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mode = m
}

// SetAnswer makes every answer code (503, 500, 403 ...), with a Retry-After
// of retryAfter seconds (0 for none).
func (r *Registrar) SetAnswer(code, retryAfter int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mode, r.code, r.retryAfter = Answering, code, retryAfter
}

// Seen returns the requests received so far.
func (r *Registrar) Seen() []Seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Seen(nil), r.seen...)
}

// Registered reports whether a binding with an unexpired Expires > 0 exists.
func (r *Registrar) Registered() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	for _, exp := range r.bindings {
		if exp.After(now) {
			return true
		}
	}
	return false
}

func (r *Registrar) handle(req *sip.Request, tx sip.ServerTransaction) {
	i := r.note(req)
	r.mu.Lock()
	mode, code, ra, s, delay := r.mode, r.code, r.retryAfter, r.seen[i], r.delay
	r.mu.Unlock()
	time.Sleep(delay) // a slow server (Slow); 0 for the others

	var res *sip.Response
	switch {
	case mode == Silent:
	case mode == Answering:
		res = sip.NewResponseFromRequest(req, code, reasons[code], nil)
		if ra > 0 {
			res.AppendHeader(sip.NewHeader("Retry-After", strconv.Itoa(ra)))
		}
	case req.Method == sip.OPTIONS || req.Method == sip.MESSAGE:
		res = sip.NewResponseFromRequest(req, 200, "OK", nil)
	default:
		res = r.register(req, &s)
	}
	r.mu.Lock()
	r.seen[i].Authorized = s.Authorized
	r.mu.Unlock()
	if res != nil {
		r.answered(i, res.StatusCode)
		tx.Respond(res)
	}
}

// note records a request as it arrives and returns its index in seen.
func (r *Registrar) note(req *sip.Request) int {
	s := Seen{At: time.Now(), Method: string(req.Method), Expires: -1, Source: req.Source(), RequestURI: req.Recipient.String()}
	if c := req.GetHeader("Contact"); c != nil {
		s.Contact = c.Value()
	}
	if v := req.Via(); v != nil {
		s.Via = v.Value()
	}
	if c := req.CallID(); c != nil {
		s.CallID = c.Value()
	}
	if f := req.From(); f != nil {
		s.From = f.Address.User + "@" + f.Address.Host
	}
	if c := req.CSeq(); c != nil {
		s.CSeq = c.SeqNo
	}
	if h := req.GetHeader("Expires"); h != nil {
		s.Expires, _ = strconv.Atoi(h.Value())
	}
	for _, h := range req.GetHeaders("Route") {
		s.Route = append(s.Route, h.Value())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, s)
	return len(r.seen) - 1
}

// answered records the status a request was answered with.
func (r *Registrar) answered(i, code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen[i].Answer = code
}

// Ping sends OPTIONS, from the registrar's listening socket as a server
// would, to the contact of every live binding, and returns the status codes
// of the answers (0 for none within timeout).
func (r *Registrar) Ping(timeout time.Duration) ([]int, error) {
	r.mu.Lock()
	running, client := r.server != nil, r.client
	var targets []string
	now := time.Now()
	for id, exp := range r.bindings {
		if c, ok := r.contacts[id]; ok && exp.After(now) {
			targets = append(targets, c)
		}
	}
	r.mu.Unlock()
	if !running {
		return nil, fmt.Errorf("%s: not started", r.Name)
	}
	var codes []int
	for _, target := range targets {
		var uri sip.Uri
		if err := sip.ParseUri(target, &uri); err != nil {
			return nil, err
		}
		req := sip.NewRequest(sip.OPTIONS, uri)
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		res, err := client.Do(ctx, req)
		cancel()
		code := 0
		if err == nil {
			code = res.StatusCode
		}
		codes = append(codes, code)
	}
	return codes, nil
}

// password returns a user's password.
func (r *Registrar) password(user string) (string, bool) {
	if user == r.User && r.User != "" {
		return r.Password, true
	}
	p, ok := r.Users[user]
	return p, ok
}

// location returns the registration database.
func (r *Registrar) location() *Location {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Location == nil {
		r.Location = NewLocation()
	}
	return r.Location
}

var reasons = map[int]string{403: "Forbidden", 404: "Not Found", 500: "Server Internal Error", 503: "Service Unavailable"}

func (r *Registrar) challenge() *digest.Challenge {
	alg := r.Algorithm
	if alg == "" {
		alg = "MD5"
	}
	return &digest.Challenge{Realm: "sipfailover", Nonce: r.nonce, Algorithm: alg, QOP: []string{"auth"}}
}

func (r *Registrar) register(req *sip.Request, s *Seen) *sip.Response {
	chal := r.challenge()
	h := req.GetHeader("Authorization")
	if h == nil || !r.verify(chal, h.Value(), string(req.Method)) {
		res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", chal.String()))
		return res
	}
	s.Authorized = true
	expires := s.Expires
	if expires < 0 {
		expires = 3600
	}
	if r.MaxExpires > 0 && expires > r.MaxExpires {
		expires = r.MaxExpires
	}
	if c := req.Contact(); c != nil {
		r.location().set(req.From().Address.User, c.Address.String(), time.Duration(expires)*time.Second)
	}
	r.mu.Lock()
	if expires == 0 {
		delete(r.bindings, s.CallID)
	} else {
		r.bindings[s.CallID] = time.Now().Add(time.Duration(expires) * time.Second)
		if c := req.Contact(); c != nil {
			if r.contacts == nil {
				r.contacts = map[string]string{}
			}
			r.contacts[s.CallID] = c.Address.String()
		}
	}
	r.mu.Unlock()
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	if c := req.Contact(); c != nil && expires > 0 {
		contact := c.Clone()
		contact.Params.Add("expires", strconv.Itoa(expires))
		res.AppendHeader(contact)
	}
	res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	return res
}

func (r *Registrar) verify(chal *digest.Challenge, header, method string) bool {
	cred, err := digest.ParseCredentials(header)
	if err != nil || cred.Nonce != chal.Nonce {
		return false
	}
	password, ok := r.password(cred.Username)
	if !ok {
		return false
	}
	want, err := digest.Digest(chal, digest.Options{Method: method, URI: cred.URI, Username: cred.Username,
		Password: password, Cnonce: cred.Cnonce, Count: cred.Nc})
	return err == nil && want.Response == cred.Response
}
