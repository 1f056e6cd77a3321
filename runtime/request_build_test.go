package runtime

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipfailover/sipfailover/runtime/locate"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/wire"
)

func response(t *testing.T, headers string) *wire.Answer {
	t.Helper()
	m, err := sip.ParseMessage([]byte("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n" +
		"From: <sip:a@h>;tag=1\r\nTo: <sip:a@h>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n" + headers + "Content-Length: 0\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	return wire.ParseAnswer(m.(*sip.Response))
}

// TestGrantedExpiry: the grant the server gave our Contact is clamped to
// [5 s, the expiry asked]; none is the expiry asked; 0 is reported.
func TestGrantedExpiry(t *testing.T) {
	ours := sip.Uri{User: "1001", Host: "192.0.2.10", Port: 5060}
	for _, tc := range []struct {
		headers string
		want    time.Duration
	}{
		{"Contact: <sip:1001@192.0.2.10:5060>;expires=120\r\n", 120 * time.Second},
		{"Contact: <sip:1001@192.0.2.10:5060>;expires=2\r\n", 5 * time.Second},
		{"Expires: 7200\r\n", time.Hour},
		{"", time.Hour},
		{"Expires: 4294967296\r\n", time.Hour},
	} {
		if d, zero := grantedExpiry(response(t, tc.headers), 3600, ours); d != tc.want || zero {
			t.Errorf("%q: %v (zero %v), want %v", tc.headers, d, zero, tc.want)
		}
	}
	if _, zero := grantedExpiry(response(t, "Expires: 0\r\n"), 3600, ours); !zero {
		t.Error("a grant of 0 is not reported")
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

// TestServerListBound: a lookup takes no more targets than a line has
// places, and a line no more places than the line model allows servers.
func TestServerListBound(t *testing.T) {
	if maxServers != locate.MaxTargets {
		t.Errorf("a line has %d places, a lookup takes %d targets", maxServers, locate.MaxTargets)
	}
	p := settings.LineConfig{Servers: []settings.ServerConfig{{Addr: "192.0.2.1"}, {Addr: "192.0.2.2"}}}.Defaults().LineParams()
	p.ServerCount = maxServers
	if err := p.Validate(); err != nil {
		t.Errorf("the line model refuses %d servers: %v", maxServers, err)
	}
	p.ServerCount = maxServers + 1
	if p.Validate() == nil {
		t.Errorf("the line model takes %d servers, more than a line has places", maxServers+1)
	}
}
