package runtimetest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"

	"github.com/miekg/dns"
)

// Zone is a DNS zone that a test changes under the lines: NAPTR, SRV, A
// and AAAA records in zone-file syntax. In virtual time it is the agent's
// resolver itself (an InstantResolver: it answers from memory, at once);
// on the network, Serve answers for it over UDP and TCP on loopback, as a
// real DNS server does.
type Zone struct {
	mu      sync.Mutex
	rrs     []dns.RR
	fail    map[string]int  // name -> the rcode to answer instead
	silent  map[string]bool // names whose questions get no answer
	queries []dns.Question
}

// NewZone returns a zone holding records (see Set).
func NewZone(records ...string) (*Zone, error) {
	z := &Zone{fail: map[string]int{}, silent: map[string]bool{}}
	return z, z.Set(records...)
}

// Set replaces the zone's records by records, each one line of a zone
// file: "_sip._udp.example.test. 30 IN SRV 10 60 5060 pbx1.example.test.".
func (z *Zone) Set(records ...string) error {
	var rrs []dns.RR
	for _, r := range records {
		rr, err := dns.NewRR(r)
		if err != nil {
			return fmt.Errorf("record %q: %w", r, err)
		}
		if rr != nil {
			rrs = append(rrs, rr)
		}
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	z.rrs = rrs
	return nil
}

// Fail makes questions for name get rcode (dns.RcodeServerFailure ...);
// 0 ends it.
func (z *Zone) Fail(name string, rcode int) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if rcode == 0 {
		delete(z.fail, dns.Fqdn(strings.ToLower(name)))
		return
	}
	z.fail[dns.Fqdn(strings.ToLower(name))] = rcode
}

// Silence makes questions for name go unanswered (a resolver that times
// out), or answered again.
func (z *Zone) Silence(name string, on bool) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.silent[dns.Fqdn(strings.ToLower(name))] = on
}

// Queries returns the questions asked so far, in order.
func (z *Zone) Queries() []dns.Question {
	z.mu.Lock()
	defer z.mu.Unlock()
	return append([]dns.Question(nil), z.queries...)
}

// errSilent is what Exchange returns in virtual time for a silenced name.
var errSilent = errors.New("i/o timeout (the zone is silent for this name)")

// Exchange answers q from memory; it implements runtime.Resolver.
func (z *Zone) Exchange(_ context.Context, q *dns.Msg) (*dns.Msg, error) {
	m, ok := z.answer(q)
	if !ok {
		return nil, errSilent
	}
	return m, nil
}

// Instant marks the zone as a runtime.InstantResolver.
func (z *Zone) Instant() {}

// answer builds the answer to q: the records of the name and type asked,
// "no such name" when the zone has no record of that name; false when the
// name is silenced.
func (z *Zone) answer(q *dns.Msg) (*dns.Msg, bool) {
	z.mu.Lock()
	defer z.mu.Unlock()
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	if len(q.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m, true
	}
	question := q.Question[0]
	z.queries = append(z.queries, question)
	name := strings.ToLower(question.Name)
	if z.silent[name] {
		return nil, false
	}
	if rc := z.fail[name]; rc != 0 {
		m.Rcode = rc
		return m, true
	}
	known := false
	for _, rr := range z.rrs {
		h := rr.Header()
		if !strings.EqualFold(h.Name, question.Name) {
			continue
		}
		known = true
		if h.Rrtype == question.Qtype {
			m.Answer = append(m.Answer, dns.Copy(rr))
		}
	}
	if !known {
		m.Rcode = dns.RcodeNameError
	}
	return m, true
}

// listenBoth listens over UDP on addr and over TCP on the port UDP got. A
// port free for UDP may be taken for TCP (by another test's connection):
// then it tries another, a few times.
func listenBoth(addr string) (net.PacketConn, net.Listener, error) {
	for range 20 {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, err
		}
	}
	return nil, nil, fmt.Errorf("no port on %s free for both UDP and TCP", addr)
}

// Serve answers for the zone over UDP and TCP on addr ("127.0.0.1:0",
// "[::1]:0"), and returns the address it listens on (the same port for
// both) and a function that stops it.
func (z *Zone) Serve(addr string) (string, func(), error) {
	pc, ln, err := listenBoth(addr)
	if err != nil {
		return "", nil, err
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		if m, ok := z.answer(q); ok {
			w.WriteMsg(m)
		}
	})
	udp := &dns.Server{PacketConn: pc, Handler: h}
	tcp := &dns.Server{Listener: ln, Handler: h}
	started := make(chan struct{}, 2)
	udp.NotifyStartedFunc = func() { started <- struct{}{} }
	tcp.NotifyStartedFunc = func() { started <- struct{}{} }
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	<-started
	<-started
	return pc.LocalAddr().String(), func() { udp.Shutdown(); tcp.Shutdown() }, nil
}
