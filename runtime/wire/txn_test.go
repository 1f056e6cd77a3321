package wire

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestRetransmissionSchedule: a non-INVITE doubles from T1 and stays at
// T2 (Timer E); an INVITE doubles without a cap (Timer A); the cap of
// transmissions ends both.
func TestRetransmissionSchedule(t *testing.T) {
	waits := func(r Retransmission) []time.Duration {
		var out []time.Duration
		for {
			w, again := r.Transmitted()
			if !again {
				if r.Sent() != 7 {
					t.Errorf("stopped after %d transmissions, want 7", r.Sent())
				}
				return out
			}
			out = append(out, w)
		}
	}
	ms := time.Millisecond
	if got, want := waits(NewRetransmission(500*ms, 2*time.Second, false, 7)), []time.Duration{500 * ms, 1000 * ms, 2000 * ms, 2000 * ms, 2000 * ms, 2000 * ms}; !slices.Equal(got, want) {
		t.Errorf("non-INVITE waits %v, want %v", got, want)
	}
	if got, want := waits(NewRetransmission(500*ms, 2*time.Second, true, 7)), []time.Duration{500 * ms, 1000 * ms, 2000 * ms, 4000 * ms, 8000 * ms, 16000 * ms}; !slices.Equal(got, want) {
		t.Errorf("INVITE waits %v, want %v", got, want)
	}
	r := NewRetransmission(500*ms, 4*time.Second, false, 0)
	for range 100 {
		if _, again := r.Transmitted(); !again {
			t.Fatalf("no cap, yet it stopped after %d", r.Sent())
		}
	}
}

// TestSentAnswers: an answer matches its request only when it repeats its
// Call-ID, From tag, CSeq number and method.
func TestSentAnswers(t *testing.T) {
	a := answerOf(t, "200 OK", "")
	s := Sent{CallID: "c", FromTag: "1", CSeq: 1, Method: sip.REGISTER}
	if !s.Answers(a) {
		t.Fatal("its own answer does not match")
	}
	for _, other := range []Sent{{"d", "1", 1, sip.REGISTER}, {"c", "2", 1, sip.REGISTER}, {"c", "1", 2, sip.REGISTER}, {"c", "1", 1, sip.OPTIONS}} {
		if other.Answers(a) {
			t.Errorf("%+v matched an answer to %+v", other, s)
		}
	}
}

// TestWriteRequest: the request written parses back with what its driver
// decided, in the order RFC 3261 12.2.1.1 and 10.2 ask, a fresh branch
// each time, and the stale Contact only when it differs.
func TestWriteRequest(t *testing.T) {
	r := Request{Method: sip.REGISTER, URI: sip.Uri{Scheme: "sip", Host: "example.com"}, Transport: "TCP",
		Local: [2]string{"[::1]", "5062"}, From: `"Lobby" <sip:1001@example.com>`, FromTag: "ft", CallID: "cid", CSeq: 7,
		Routes: []string{"<sip:p1;lr>", "<sip:p2;lr>"}, Contact: "sip:1001@[::1]:5062;transport=tcp",
		Stale: "sip:1001@[::1]:5999;transport=tcp", Expires: 60, AuthHeader: "Authorization", AuthValue: "Digest x", Supported: "path"}
	msg, branch := r.Write()
	_, branch2 := r.Write()
	if !strings.HasPrefix(branch, branchMagic) || branch == branch2 {
		t.Fatalf("branches %q, %q: want fresh ones with the magic cookie", branch, branch2)
	}
	m, err := Parse(msg)
	if err != nil {
		t.Fatal(err)
	}
	req := m.(*sip.Request)
	if err := CheckRequest(req); err != nil {
		t.Fatal(err)
	}
	var routes, contacts []string
	for _, h := range req.GetHeaders("Route") {
		routes = append(routes, h.Value())
	}
	for _, h := range req.GetHeaders("Contact") {
		contacts = append(contacts, h.Value())
	}
	via := req.Via()
	b, _ := via.Params.Get("branch")
	checks := map[string][2]string{
		"Request-URI": {req.Recipient.String(), "sip:example.com"},
		"Via":         {via.Transport + " " + via.Host + " " + b, "TCP ::1 " + branch},
		"From":        {req.From().Value(), `"Lobby" <sip:1001@example.com>;tag=ft`},
		"To":          {req.To().Value(), `"Lobby" <sip:1001@example.com>`},
		"CSeq":        {req.CSeq().Value(), "7 REGISTER"},
		"Route":       {strings.Join(routes, ","), "<sip:p1;lr>,<sip:p2;lr>"},
		"Contact":     {strings.Join(contacts, ","), "<sip:1001@[::1]:5062;transport=tcp>,<sip:1001@[::1]:5999;transport=tcp>;expires=0"},
		"Expires":     {req.GetHeader("Expires").Value(), "60"},
		"Auth":        {req.GetHeader("Authorization").Value(), "Digest x"},
		"Supported":   {req.GetHeader("Supported").Value(), "path"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s: %q, want %q", name, c[0], c[1])
		}
	}
	r.Stale, r.Expires, r.To, r.Supported = r.Contact, -1, "<sip:1002@example.com>;tag=far", ""
	m, _ = Parse(mustWrite(r))
	req = m.(*sip.Request)
	if n := len(req.GetHeaders("Contact")); n != 1 || req.GetHeader("Expires") != nil || req.GetHeader("Supported") != nil || req.To().Value() != "<sip:1002@example.com>;tag=far" {
		t.Errorf("stale Contact equal to ours: %d Contacts, Expires %v, Supported %v, To %q", n, req.GetHeader("Expires"), req.GetHeader("Supported"), req.To().Value())
	}
}

func mustWrite(r Request) []byte {
	msg, _ := r.Write()
	return msg
}
