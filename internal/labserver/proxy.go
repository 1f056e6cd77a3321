package labserver

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Location is a registration database: a user's latest contact. Servers
// that share one reach each other's users, as the seed's primary and
// backup share their registrations.
type Location struct {
	mu       sync.Mutex
	contacts map[string]binding // user -> latest contact
}

type binding struct {
	contact string
	until   time.Time
}

// NewLocation returns an empty database.
func NewLocation() *Location { return &Location{contacts: map[string]binding{}} }

// set records a user's contact for d; d of 0 removes it.
func (l *Location) set(user, contact string, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if d <= 0 {
		if l.contacts[user].contact == contact {
			delete(l.contacts, user)
		}
		return
	}
	l.contacts[user] = binding{contact, time.Now().Add(d)}
}

// Lookup returns a user's live contact.
func (l *Location) Lookup(user string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.contacts[user]
	if !ok || time.Now().After(b.until) {
		return "", false
	}
	return b.contact, true
}

// handleCall proxies a request of a call (RFC 3261 section 16): an INVITE
// from a known user is challenged first (407), then goes to the contact of
// the user it is for, with this server in Record-Route; a request with a
// Route naming this server goes on to the next Route or its Request-URI;
// any other goes to its Request-URI (a BYE that another server's user
// sends here after failing over, R7).
func (r *Registrar) handleCall(req *sip.Request, tx sip.ServerTransaction) {
	i := r.note(req)
	r.mu.Lock()
	mode, code, ra, client, me, delay := r.mode, r.code, r.retryAfter, r.client, r.Addr, r.delay
	r.mu.Unlock()
	if req.Method != sip.ACK {
		time.Sleep(delay) // a slow server (Slow); 0 for the others
	}
	respond := func(res *sip.Response) {
		r.answered(i, res.StatusCode)
		tx.Respond(res)
	}
	switch {
	case mode == Silent:
		return
	case mode == Answering && req.Method != sip.ACK:
		res := sip.NewResponseFromRequest(req, code, reasons[code], nil)
		if ra > 0 {
			res.AppendHeader(sip.NewHeader("Retry-After", strconv.Itoa(ra)))
		}
		respond(res)
		return
	case mode == Answering:
		return
	}
	_, inDialog := req.To().Params.Get("tag")
	if req.Method == sip.INVITE && !inDialog {
		if _, known := r.password(req.From().Address.User); known {
			chal := r.challenge()
			h := req.GetHeader("Proxy-Authorization")
			if h == nil || !r.verify(chal, h.Value(), string(req.Method)) {
				res := sip.NewResponseFromRequest(req, 407, "Proxy Authentication Required", nil)
				res.AppendHeader(sip.NewHeader("Proxy-Authenticate", chal.String()))
				respond(res)
				return
			}
			r.mu.Lock()
			r.seen[i].Authorized = true
			r.mu.Unlock()
		}
	}
	fwd := req.Clone()
	// Loose routing (16.4): take this server's own Route off.
	if rt := fwd.GetHeader("Route"); rt != nil && strings.Contains(rt.Value(), me) {
		fwd.RemoveHeader("Route")
	}
	dst := ""
	if rt := fwd.GetHeader("Route"); rt != nil {
		var u sip.Uri
		if sip.ParseUri(strings.Trim(strings.TrimSpace(rt.Value()), "<>"), &u) == nil {
			dst = u.HostPort()
		}
	} else if contact, ok := r.location().Lookup(fwd.Recipient.User); ok && !inDialog && req.Method == sip.INVITE {
		var u sip.Uri
		if sip.ParseUri(contact, &u) == nil {
			fwd.Recipient = u
		}
	}
	if req.Method == sip.INVITE && !inDialog && fwd.Recipient.HostPort() == req.Recipient.HostPort() {
		respond(sip.NewResponseFromRequest(req, 404, "Not Found", nil))
		return
	}
	if dst == "" {
		dst = fwd.Recipient.HostPort()
		if fwd.Recipient.Port == 0 {
			dst += ":5060"
		}
	}
	fwd.SetDestination(dst)
	fwd.SetTransport(transportOf(fwd.Recipient))
	if mf := fwd.MaxForwards(); mf != nil {
		mf.Dec()
	}
	if req.Method == sip.INVITE && !inDialog {
		fwd.PrependHeader(sip.NewHeader("Record-Route", "<sip:"+me+";lr>"))
	}
	if req.Method == sip.ACK {
		client.WriteRequest(fwd, sipgo.ClientRequestAddVia)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	clTx, err := client.TransactionRequest(ctx, fwd, sipgo.ClientRequestAddVia)
	if err != nil {
		respond(sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil))
		return
	}
	defer clTx.Terminate()
	for {
		select {
		case res, more := <-clTx.Responses():
			if !more {
				return
			}
			res.RemoveHeader("Via")
			respond(res)
			if res.StatusCode >= 200 {
				return
			}
		case <-tx.Done():
			if req.Method == sip.INVITE { // cancelled upstream: cancel downstream (16.10)
				client.WriteRequest(cancelOf(fwd))
			}
			return
		case <-clTx.Done():
			respond(sip.NewResponseFromRequest(req, 408, "Request Timeout", nil))
			return
		}
	}
}

// cancelOf builds the CANCEL of a forwarded INVITE: its top Via, From,
// To, Call-ID and CSeq number (RFC 3261 9.1).
func cancelOf(inv *sip.Request) *sip.Request {
	c := sip.NewRequest(sip.CANCEL, inv.Recipient)
	for _, h := range []string{"Via", "From", "To", "Call-ID"} {
		if v := inv.GetHeader(h); v != nil {
			c.AppendHeader(sip.NewHeader(h, v.Value()))
		}
	}
	c.AppendHeader(sip.NewHeader("CSeq", strconv.Itoa(int(inv.CSeq().SeqNo))+" CANCEL"))
	c.AppendHeader(sip.NewHeader("Max-Forwards", "70"))
	c.AppendHeader(sip.NewHeader("Content-Length", "0"))
	c.SetDestination(inv.Destination())
	c.SetTransport(inv.Transport())
	return c
}

// transportOf reads a URI's transport parameter; UDP when it has none.
func transportOf(u sip.Uri) string {
	if t, ok := u.UriParams.Get("transport"); ok {
		return strings.ToUpper(t)
	}
	return "UDP"
}
