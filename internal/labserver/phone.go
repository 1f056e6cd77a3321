package labserver

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Phone is the far end of calls in loopback tests and the demo: a user
// agent on one UDP socket that registers through a server, answers every
// call with 200 OK and records what reached it, whichever server it came
// through.
type Phone struct {
	User     string
	Password string
	Host     string // the address it listens on; 127.0.0.1 when empty
	Network  string // "udp" (when empty) or "tcp"
	Addr     string // host:port once started

	mu     sync.Mutex
	seen   []PhoneSeen
	calls  map[string]string // Call-ID -> "up" or "ended"
	server *listening
	client *sipgo.Client
}

// PhoneSeen is one request that reached the phone.
type PhoneSeen struct {
	At     time.Time
	Method string
	CallID string
	From   string // the address it came from: the server that forwarded it
}

// Start listens on a free port of Host, over Network.
func (p *Phone) Start() error {
	host := p.Host
	if host == "" {
		host = "127.0.0.1"
	}
	l, err := listen("phone "+p.User, cmp.Or(p.Network, "udp"), net.JoinHostPort(host, "0"), nil, func(srv *sipgo.Server) {
		srv.OnInvite(p.invite)
		srv.OnAck(func(req *sip.Request, _ sip.ServerTransaction) { p.note(req, "up") })
		srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
			code, reason := 200, "OK"
			if p.note(req, "ended") == "" {
				code, reason = 481, "Call/Transaction Does Not Exist"
			}
			tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil))
		})
		srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
			tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		})
	})
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.Addr, p.server, p.client, p.calls = l.addr, l, l.client, map[string]string{}
	p.mu.Unlock()
	return nil
}

// Stop closes the phone's socket.
func (p *Phone) Stop() {
	p.mu.Lock()
	l := p.server
	p.server = nil
	p.mu.Unlock()
	if l != nil {
		l.stop()
	}
}

// Locate puts the phone's address in loc for d, as a registration would,
// without one on the wire: a capture of the servers shows the phone under
// test alone.
func (p *Phone) Locate(loc *Location, d time.Duration) {
	loc.set(p.User, p.contact(), d)
}

// contact is the phone's address as a URI, with its transport.
func (p *Phone) contact() string {
	if p.Network == "tcp" {
		return "sip:" + p.User + "@" + p.Addr + ";transport=tcp"
	}
	return "sip:" + p.User + "@" + p.Addr
}

// Register registers the phone's address through the server at addr
// (UDP), answering its digest challenge.
func (p *Phone) Register(addr string) error {
	host, port, err := sip.ParseAddr(addr)
	if err != nil {
		return err
	}
	aor := sip.Uri{Scheme: "sip", User: p.User, Host: host, Port: port}
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: host, Port: port})
	req.AppendHeader(&sip.FromHeader{Address: aor, Params: sip.HeaderParams{{K: "tag", V: sip.GenerateTagN(8)}}})
	req.AppendHeader(&sip.ToHeader{Address: aor})
	req.AppendHeader(sip.NewHeader("Contact", "<"+p.contact()+">"))
	req.AppendHeader(sip.NewHeader("Expires", "3600"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := p.client.Do(ctx, req)
	if err == nil && (res.StatusCode == 401 || res.StatusCode == 407) {
		res, err = p.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: p.User, Password: p.Password})
	}
	if err != nil {
		return fmt.Errorf("phone %s: register at %s: %w", p.User, addr, err)
	}
	if res.StatusCode != 200 {
		return fmt.Errorf("phone %s: register at %s: %d %s", p.User, addr, res.StatusCode, res.Reason)
	}
	return nil
}

func (p *Phone) invite(req *sip.Request, tx sip.ServerTransaction) {
	p.note(req, "")
	body := fmt.Appendf(nil, "v=0\r\no=%s 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\na=inactive\r\n", p.User)
	res := sip.NewResponseFromRequest(req, 200, "OK", body)
	res.To().Params.Add("tag", sip.GenerateTagN(8))
	res.AppendHeader(sip.NewHeader("Contact", "<"+p.contact()+">"))
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	tx.Respond(res)
}

// note records a request; state, when set, becomes the call's. It returns
// the call's state before.
func (p *Phone) note(req *sip.Request, state string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	id := req.CallID().Value()
	p.seen = append(p.seen, PhoneSeen{At: time.Now(), Method: string(req.Method), CallID: id, From: req.Source()})
	before := p.calls[id]
	switch {
	case req.Method == sip.INVITE && before == "":
		p.calls[id] = "ringing"
	case state == "up" && before == "ringing", state == "ended" && before != "":
		// An ACK that a proxy delivers after the BYE does not bring the
		// call back.
		p.calls[id] = state
	}
	return before
}

// Seen returns the requests that reached the phone.
func (p *Phone) Seen() []PhoneSeen {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]PhoneSeen(nil), p.seen...)
}

// Call returns the state of a call at the phone: "ringing" (invited, not
// yet acknowledged), "up", "ended", or "" when it never reached the phone.
func (p *Phone) Call(callID string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[callID]
}

// Dial calls user through the server at via (host:port) as the far end
// does: the INVITE, its answer, the ACK, then after hold the BYE, both
// along the route the answer recorded. It returns once the BYE is
// answered, or with why the call failed.
func (p *Phone) Dial(ctx context.Context, via, user string, hold time.Duration) error {
	host, port, err := sip.ParseAddr(via)
	if err != nil {
		return err
	}
	me, myPort, err := sip.ParseAddr(p.Addr)
	if err != nil {
		return err
	}
	p.mu.Lock()
	client, l := p.client, p.server
	p.mu.Unlock()
	if l == nil {
		return fmt.Errorf("phone %s: not started", p.User)
	}
	if p.Network == "tcp" {
		// A connection of its own to the server, from any port: the
		// listening one is taken.
		if client, err = sipgo.NewClient(l.ua, sipgo.WithClientHostname(me)); err != nil {
			return err
		}
		defer client.Close()
	}
	dua := sipgo.DialogUA{Client: client, ContactHDR: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: p.User, Host: me, Port: myPort}}}
	if p.Network == "tcp" {
		dua.ContactHDR.Address.UriParams = sip.NewParams()
		dua.ContactHDR.Address.UriParams.Add("transport", "tcp")
	}
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: user, Host: host, Port: port})
	req.SetDestination(via)
	req.SetTransport(strings.ToUpper(cmp.Or(p.Network, "udp")))
	req.SetBody(fmt.Appendf(nil, "v=0\r\no=%s 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\na=inactive\r\n", p.User, me, me))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	sess, err := dua.WriteInvite(ctx, req)
	if err != nil {
		return fmt.Errorf("the far end's INVITE: %w", err)
	}
	defer sess.Close()
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{Username: p.User, Password: p.Password}); err != nil {
		return fmt.Errorf("the far end's INVITE: %w", err)
	}
	if err := sess.Ack(ctx); err != nil {
		return fmt.Errorf("the far end's ACK: %w", err)
	}
	select {
	case <-time.After(hold):
	case <-ctx.Done():
	}
	if err := sess.Bye(ctx); err != nil {
		return fmt.Errorf("the far end's BYE: %w", err)
	}
	return nil
}
