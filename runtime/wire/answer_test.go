package wire

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

func answerOf(t *testing.T, status, headers string) *Answer {
	t.Helper()
	m, err := Parse([]byte("SIP/2.0 " + status + "\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n" +
		"From: <sip:a@h>;tag=1\r\nTo: <sip:a@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n" + headers + "Content-Length: 0\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	res := m.(*sip.Response)
	if err := CheckResponse(res); err != nil {
		t.Fatal(err)
	}
	return ParseAnswer(res)
}

// TestRetryAfter: RFC 3261 20.33 allows a comment and a duration parameter
// after the seconds; garbage is no hold-off at all.
func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   time.Duration
	}{
		{"Retry-After: 30\r\n", 30 * time.Second},
		{"Retry-After: 30 (maintenance)\r\n", 30 * time.Second},
		{"Retry-After: 18000;duration=3600\r\n", 18000 * time.Second},
		{"Retry-After: 120 (I'm in a meeting);duration=3600\r\n", 120 * time.Second},
		{"Retry-After: soon\r\n", 0},
		{"Retry-After: -5\r\n", 0},
		{"", 0},
	} {
		if got := answerOf(t, "503 Service Unavailable", tc.header).RetryAfter; got != tc.want {
			t.Errorf("%q: %v, want %v", tc.header, got, tc.want)
		}
	}
}

// TestGrantedPicksOurContact: a registrar lists every binding of the
// address of record; ours is the one that counts, else the Expires header;
// a value that is no delta-seconds is passed over.
func TestGrantedPicksOurContact(t *testing.T) {
	ours := sip.Uri{User: "1001", Host: "192.0.2.10", Port: 5060}
	for _, tc := range []struct {
		headers string
		secs    int
		ok      bool
	}{
		{"Contact: <sip:1001@192.0.2.99:5060>;expires=7, <sip:1001@192.0.2.10:5060;transport=udp>;expires=120\r\nExpires: 3000\r\n", 120, true},
		{"Contact: <sip:1001@192.0.2.99:5060>;expires=7\r\nExpires: 300\r\n", 300, true},
		{"Contact: <sip:1001@192.0.2.10:5060>;expires=soon\r\nExpires: 300\r\n", 300, true},
		{"Expires: 0\r\n", 0, true},
		{"Expires: 99999999999999999999\r\n", 1<<31 - 1, true},
		{"Expires: -1\r\n", 0, false},
		{"", 0, false},
	} {
		if secs, ok := answerOf(t, "200 OK", tc.headers).Granted(ours); secs != tc.secs || ok != tc.ok {
			t.Errorf("%q: %d %v, want %d %v", tc.headers, secs, ok, tc.secs, tc.ok)
		}
	}
}

// TestMinExpires: a 423's Min-Expires is read once, or why it cannot be.
func TestMinExpires(t *testing.T) {
	if a := answerOf(t, "423 Interval Too Brief", "Min-Expires: 600\r\n"); a.MinExpires != 600 || a.MinExpiresProblem != "" {
		t.Errorf("Min-Expires 600: %d %q", a.MinExpires, a.MinExpiresProblem)
	}
	if a := answerOf(t, "423 Interval Too Brief", ""); a.MinExpiresProblem != "423 without Min-Expires" {
		t.Errorf("none: %q", a.MinExpiresProblem)
	}
	if a := answerOf(t, "423 Interval Too Brief", "Min-Expires: ten\r\n"); a.MinExpiresProblem != `bad Min-Expires "ten"` {
		t.Errorf("ten: %q", a.MinExpiresProblem)
	}
}

// TestChallenge: a 401's and a 407's challenge are read once with the
// header that answers them, stale or not; one that cannot be read says
// why when credentials are asked of it.
func TestChallenge(t *testing.T) {
	a := answerOf(t, "401 Unauthorized", `WWW-Authenticate: Digest realm="r", nonce="n", algorithm=SHA-256, qop="auth", stale=true`+"\r\n")
	if a.Challenge == nil || !a.Stale() || a.AuthHeader != "Authorization" {
		t.Fatalf("401: %+v %v %q", a.Challenge, a.Stale(), a.AuthHeader)
	}
	name, value, err := a.Credentials(sip.REGISTER, "sip:h", "1001", "secret", 1)
	if err != nil || name != "Authorization" || !strings.Contains(value, "algorithm=SHA-256") || !strings.Contains(value, "nc=00000001") {
		t.Errorf("credentials: %q %q %v", name, value, err)
	}
	if a := answerOf(t, "407 Proxy Authentication Required", `Proxy-Authenticate: Digest realm="r", nonce="n"`+"\r\n"); a.AuthHeader != "Proxy-Authorization" || a.Stale() {
		t.Errorf("407: %q %v", a.AuthHeader, a.Stale())
	}
	if _, _, err := answerOf(t, "401 Unauthorized", "").Credentials(sip.REGISTER, "sip:h", "u", "p", 1); err == nil || !strings.Contains(err.Error(), "without WWW-Authenticate") {
		t.Errorf("a 401 without its header: %v", err)
	}
}

// TestRoutes: Record-Route entries in the order of the message, several in
// one header or one a header.
func TestRoutes(t *testing.T) {
	a := answerOf(t, "200 OK", "Record-Route: <sip:p1;lr>, <sip:p2;lr>\r\nRecord-Route: <sip:p3;lr>\r\n")
	if got := strings.Join(a.Routes, " "); got != "<sip:p1;lr> <sip:p2;lr> <sip:p3;lr>" {
		t.Errorf("routes %q", got)
	}
}

// TestAckAndCancel: the ACK of a failure and a CANCEL repeat the request's
// top Via, Route set, From, Call-ID and CSeq number (RFC 3261 17.1.1.3,
// 9.1: a CANCEL carries the Route of the request it cancels, so that it
// takes the same path).
func TestAckAndCancel(t *testing.T) {
	m, err := Parse([]byte("INVITE sip:1002@h SIP/2.0\r\nVia: SIP/2.0/UDP p;branch=z9hG4bKinv\r\nRoute: <sip:p1;lr>\r\nMax-Forwards: 70\r\n" +
		"From: <sip:1001@h>;tag=f\r\nTo: <sip:1002@h>\r\nCall-ID: call\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	inv := m.(*sip.Request)
	to := sip.ToHeader{Address: sip.Uri{User: "1002", Host: "h"}, Params: sip.NewParams()}
	to.Params.Add("tag", "t")
	ack := AckOfFailure(inv, &to).String()
	for _, want := range []string{"ACK sip:1002@h SIP/2.0", "branch=z9hG4bKinv", "Route: <sip:p1;lr>", "tag=t", "CSeq: 7 ACK", "Call-ID: call"} {
		if !strings.Contains(ack, want) {
			t.Errorf("the ACK lacks %q:\n%s", want, ack)
		}
	}
	cancel := CancelOf(inv).String()
	for _, want := range []string{"CANCEL sip:1002@h SIP/2.0", "branch=z9hG4bKinv", "Route: <sip:p1;lr>", "To: <sip:1002@h>", "CSeq: 7 CANCEL"} {
		if !strings.Contains(cancel, want) {
			t.Errorf("the CANCEL lacks %q:\n%s", want, cancel)
		}
	}
}

// TestAnswerNamesItsRequest: what a response repeats of its request is
// read once, into the Answer, for the drivers to match it by.
func TestAnswerNamesItsRequest(t *testing.T) {
	a := answerOf(t, "200 OK", "")
	got := [...]string{a.Branch, a.CallID, a.FromTag, a.ToTag, a.FromUser, string(a.Method)}
	want := [...]string{"z9hG4bKx", "c", "1", "2", "a", "REGISTER"}
	if got != want || a.CSeq != 1 {
		t.Errorf("answer names %q CSeq %d, want %q CSeq 1", got, a.CSeq, want)
	}
	m, err := Parse([]byte("SIP/2.0 100 Trying\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKy\r\n" +
		"From: <sip:b@h>;tag=9\r\nTo: <sip:b@h>\r\nCall-ID: d\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if callID, from, to := DialogOf(m); callID != "d" || from != "9" || to != "" {
		t.Errorf("dialog %q %q %q, want d 9 and no To tag", callID, from, to)
	}
}

// TestReply: an answer carries our tag where the request had none, keeps
// the request's where it had one, speaks SIP/2.0 to any version, and can
// answer a request that lacks a To.
func TestReply(t *testing.T) {
	req := func(to string) *sip.Request {
		m, err := Parse([]byte("INVITE sip:a@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKr\r\nMax-Forwards: 70\r\n" +
			"From: <sip:b@h>;tag=9\r\n" + to + "Call-ID: d\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		return m.(*sip.Request)
	}
	for _, c := range []struct {
		to, tag, want string
	}{
		{"To: <sip:a@h>\r\n", "ours", "ours"},
		{"To: <sip:a@h>;tag=theirs\r\n", "ours", "theirs"},
	} {
		res := Reply(req(c.to), 200, "OK", c.tag, nil)
		if _, _, to := DialogOf(res); to != c.want || res.SipVersion != "SIP/2.0" {
			t.Errorf("%q: To tag %q in %s, want %q", c.to, to, res.SipVersion, c.want)
		}
	}
	if res := Reply(req(""), 400, "Missing or Bad To", "ours", nil); res.StatusCode != 400 || res.To() != nil {
		t.Errorf("a request without To: %s", res.StartLine())
	}
}

// TestChallengedKeepsOnlyTheChallenge: what a line keeps of a 401 to
// answer later requests with answers them as the whole answer does, and
// holds no message.
func TestChallengedKeepsOnlyTheChallenge(t *testing.T) {
	a := answerOf(t, "401 Unauthorized", "WWW-Authenticate: Digest realm=\"r\", nonce=\"n1\", algorithm=MD5\r\n")
	kept := a.Challenged()
	if kept.Response != nil || kept.Routes != nil || kept.CallID != "" {
		t.Errorf("the kept challenge holds more than the challenge: %+v", kept)
	}
	name, v1, err := a.Credentials(sip.REGISTER, "sip:h", "u", "p", 1)
	if err != nil {
		t.Fatal(err)
	}
	name2, v2, err := kept.Credentials(sip.REGISTER, "sip:h", "u", "p", 1)
	if err != nil || name2 != name || !strings.HasPrefix(v2, `Digest username="u", realm="r", nonce="n1"`) || !strings.HasPrefix(v1, `Digest username="u", realm="r", nonce="n1"`) {
		t.Errorf("kept credentials %s %q (%v), want %s as the answer gives: %q", name2, v2, err, name, v1)
	}
}

// TestFlowTimer: a 2xx's Flow-Timer (RFC 5626 4.4.1) is read once, as
// seconds; none, zero, a sign or garbage is no Flow-Timer, and a value
// too large for an int is the largest (the runtime caps it at an hour).
func TestFlowTimer(t *testing.T) {
	for v, want := range map[string]time.Duration{
		"":                               0,
		"Flow-Timer: 20\r\n":             20 * time.Second,
		"Flow-Timer:  7 \r\n":            7 * time.Second,
		"Flow-Timer: 0\r\n":              0,
		"Flow-Timer: -5\r\n":             0,
		"Flow-Timer: soon\r\n":           0,
		"Flow-Timer: 99999999999999\r\n": (1<<31 - 1) * time.Second,
	} {
		if got := answerOf(t, "200 OK", v).FlowTimer; got != want {
			t.Errorf("%q: Flow-Timer %v, want %v", v, got, want)
		}
	}
}
