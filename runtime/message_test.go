package runtime

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

func response(t *testing.T, headers string) *sip.Response {
	t.Helper()
	m, err := sip.ParseMessage([]byte("SIP/2.0 503 Service Unavailable\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n" +
		"From: <sip:a@h>;tag=1\r\nTo: <sip:a@h>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n" + headers + "Content-Length: 0\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	return m.(*sip.Response)
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
		if got := retryAfter(response(t, tc.header)); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.header, got, tc.want)
		}
	}
}

// TestGrantedExpiryPicksOurContact: a registrar lists every binding of the
// address of record; the line's own is the one that counts, and one a
// server granted is used, never the one asked for.
func TestGrantedExpiryPicksOurContact(t *testing.T) {
	ours := sip.Uri{User: "1001", Host: "192.0.2.10", Port: 5060}
	res := response(t, "Contact: <sip:1001@192.0.2.99:5060>;expires=7, <sip:1001@192.0.2.10:5060;transport=udp>;expires=120\r\nExpires: 3000\r\n")
	if d, zero := grantedExpiry(res, 3600, ours); d != 120*time.Second || zero {
		t.Errorf("got %v (zero %v), want 120s from our own Contact", d, zero)
	}
	res = response(t, "Contact: <sip:1001@192.0.2.99:5060>;expires=7\r\nExpires: 300\r\n")
	if d, _ := grantedExpiry(res, 3600, ours); d != 300*time.Second {
		t.Errorf("got %v, want the Expires header's 300s when our Contact is not listed", d)
	}
	if _, zero := grantedExpiry(response(t, "Expires: 0\r\n"), 3600, ours); !zero {
		t.Error("a grant of 0 is not reported")
	}
	for _, v := range []string{"4294967296", "99999999999999999999"} {
		if d, _ := grantedExpiry(response(t, "Expires: "+v+"\r\n"), 3600, ours); d != time.Hour {
			t.Errorf("Expires %s: %v, want the hour asked", v, d)
		}
	}
}

// TestLogLimit: bad input is logged at most five times a minute per source;
// another source has its own allowance, and a new minute a new one.
func TestLogLimit(t *testing.T) {
	clock := &stepClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := newLogLimit(clock)
	for i := range 5 {
		if !l.allow("192.0.2.1") {
			t.Fatalf("line %d of a source refused", i+1)
		}
	}
	if l.allow("192.0.2.1") {
		t.Fatal("a sixth line in a minute allowed")
	}
	if !l.allow("192.0.2.2") {
		t.Fatal("another source refused")
	}
	clock.now = clock.now.Add(time.Minute)
	if !l.allow("192.0.2.1") {
		t.Fatal("a new minute refused")
	}
}

// stepClock is a Clock whose time the test sets.
type stepClock struct{ now time.Time }

func (c *stepClock) Now() time.Time                        { return c.now }
func (c *stepClock) AfterFunc(time.Duration, func()) Timer { return nil }
