package runtime_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/runtimetest"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
)

// TestNeverIsAbsent: a time that has not happened (a line that never
// failed, a call not answered or not ended) is left out of the JSON of
// the status and the call API, not written as 0001-01-01T00:00:00Z.
func TestNeverIsAbsent(t *testing.T) {
	for _, v := range []any{runtime.Status{Since: time.Now()}, runtime.CallInfo{Started: time.Now()}} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		for _, never := range []string{"0001-01-01", `"last_failure_at"`, `"answered"`, `"ended"`} {
			if strings.Contains(string(b), never) {
				t.Errorf("%T: %s holds %s", v, b, never)
			}
		}
	}
	b, _ := json.Marshal(runtime.CallInfo{Ended: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)})
	if !strings.Contains(string(b), `"ended":"2026-12-07T09:00:00Z"`) {
		t.Errorf("an ended call: %s", b)
	}
}

// TestCallsAreLogged: each state change of a call is logged with its
// Call-ID, the far end, the server and why, as a line's are.
func TestCallsAreLogged(t *testing.T) {
	clock := runtimetest.NewVirtualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	net := runtimetest.NewSimNetwork(clock, 10*time.Millisecond)
	for _, host := range []string{"127.0.1.1", "127.0.1.2"} {
		net.Add(&runtimetest.SimServer{Endpoint: transport.Endpoint{Host: host, Port: 5060}})
	}
	var logs bytes.Buffer
	agent := runtime.NewAgent(net, runtime.WithClock(clock), runtime.WithSeed(1), runtime.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	l, err := agent.AddLine(settings.LineConfig{Name: "desk", User: "1001", Password: "secret", Domain: "example.test",
		Servers: []settings.ServerConfig{{Addr: "127.0.1.1"}, {Addr: "127.0.1.2"}}})
	if err != nil {
		t.Fatal(err)
	}
	l.Register()
	clock.Advance(time.Second)
	c, err := l.Dial("1002")
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	c.Hangup()
	clock.Advance(time.Second)
	var seen []string
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var e struct{ Msg, Call, To, Remote, Reason string }
		if json.Unmarshal([]byte(line), &e) == nil && e.Msg == "call transition" {
			if e.Call != c.ID() || e.Remote != "sip:1002@example.test" {
				t.Errorf("a call's log line without its Call-ID or far end: %s", line)
			}
			seen = append(seen, e.To)
		}
	}
	if got := strings.Join(seen, " "); !strings.Contains(got, "confirmed") || !strings.HasSuffix(got, "ended") {
		t.Errorf("the call's states logged: %q, want it answered and ended", got)
	}
}
