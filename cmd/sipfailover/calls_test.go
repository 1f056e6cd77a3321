package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/runtimetest"
)

// TestCallAndHangup: `sipfailover call` places a call from a running agent
// through its primary to a far end, and `sipfailover hangup` ends it; bad
// input is refused with the field named.
func TestCallAndHangup(t *testing.T) {
	loc := runtimetest.NewLocation()
	var rs []*runtimetest.Registrar
	for _, name := range []string{"p", "b"} {
		r := &runtimetest.Registrar{Name: name, User: "1001", Password: "pw", Users: map[string]string{"1002": "far"}, Location: loc}
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Stop)
		rs = append(rs, r)
	}
	phone := &runtimetest.Phone{User: "1002", Password: "far"}
	if err := phone.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(phone.Stop)
	if err := phone.Register(rs[0].Addr); err != nil {
		t.Fatal(err)
	}
	addr, path := runAgent(t, settingsFile([2]int{rs[0].Port(), rs[1].Port()}))
	tok := testToken(path)
	var out, errOut bytes.Buffer
	eventually(t, "the agent answers, its line registered", func() bool {
		return rs[0].Registered() && statusCmd([]string{"-addr", addr}, &out, &errOut) == 0
	})
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"-addr", addr, "-token-file", tok, "-line", "7", "sip:1002@127.0.0.1"}, "line: line 7: the settings have lines 1 to 1"},
		{[]string{"-addr", addr, "-token-file", tok, "-line", "nope", "sip:1002@127.0.0.1"}, `line: no line "nope"`},
		{[]string{"-addr", addr, "-token-file", tok, "sip:"}, "to: target"},
		{[]string{"-addr", addr, "-token-file", tok + ".missing", "sip:1002@127.0.0.1"}, "control token"},
	} {
		errOut.Reset()
		if code := callCmd(bad.args, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), bad.want) {
			t.Errorf("call %v exited %d with %q, want 1 and %q", bad.args, code, errOut.String(), bad.want)
		}
	}

	out.Reset()
	if code := callCmd([]string{"-addr", addr, "-token-file", tok, "-line", "1", "sip:1002@127.0.0.1"}, &out, &errOut); code != 0 {
		t.Fatalf("call exited %d: %s %s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "confirmed through server 1") {
		t.Fatalf("call printed %q, want it confirmed through the primary", out.String())
	}
	id := strings.Fields(out.String())[1]
	eventually(t, "the far end's call is up (its ACK may be on the way)", func() bool { return phone.Call(id) == "up" })
	// The call is listed, by `calls` and below the lines of `status`, with
	// its server, state and age.
	for _, c := range []struct {
		name string
		cmd  func([]string, io.Writer, io.Writer) int
	}{{"calls", callsCmd}, {"status", statusCmd}} {
		out.Reset()
		if code := c.cmd([]string{"-addr", addr, "-token-file", tok}, &out, &errOut); code != 0 {
			t.Fatalf("%s exited %d: %s", c.name, code, errOut.String())
		}
		row := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(id) + `\s+line1\s+outgoing\s+sip:1002@127\.0\.0\.1\s+confirmed\s+1 UDP 127\.0\.0\.1:` + strconv.Itoa(rs[0].Port()) + `\s+\d+s$`)
		if !row.MatchString(out.String()) {
			t.Errorf("%s does not list the call %s with its line, far end, state, server and age:\n%s", c.name, id, out.String())
		}
	}
	out.Reset()
	if code := statusCmd([]string{"-addr", addr, "-token-file", tok + ".missing"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "1 calls; `sipfailover calls` lists them") {
		t.Errorf("status without the token exited %d, printed:\n%s", code, out.String())
	}
	out.Reset()
	if code := hangupCmd([]string{"-addr", addr, "-token-file", tok}, &out, &errOut); code != 0 {
		t.Fatalf("hangup exited %d: %s %s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "ended") {
		t.Fatalf("hangup printed %q, want the call ended", out.String())
	}
	if st := phone.Call(id); st != "ended" {
		t.Fatalf("the far end's call is %q, want ended", st)
	}
	out.Reset()
	if code := callsCmd([]string{"-addr", addr, "-token-file", tok}, &out, &errOut); code != 0 || out.String() != "no calls\n" {
		t.Errorf("calls after the hang-up exited %d, printed %q", code, out.String())
	}
}

// TestCallAPIRefusesStrangers: item 4 of the settings issue. POST
// /api/calls placed a call for anyone who could reach the status port,
// with a form-encoded or query-only body and any Origin, so any web page
// in a local browser could (toll fraud). Now the call API wants the
// control token, a JSON body, no Origin and a Host of its own.
func TestCallAPIRefusesStrangers(t *testing.T) {
	rs := startRegistrars(t, "p", "b")
	addr, path := runAgent(t, settingsFile([2]int{rs[0].Port(), rs[1].Port()}))
	eventually(t, "the line registers and the agent serves its status port", func() bool {
		var out, errOut bytes.Buffer
		return rs[0].Registered() && statusCmd([]string{"-addr", addr}, &out, &errOut) == 0
	})
	tok, err := readToken(testToken(path))
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(testToken(path)); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("token file: %v, mode %v; want 0600", err, info.Mode().Perm())
	}
	body := `{"line": "1", "to": "sip:900@127.0.0.1"}`
	for _, tc := range []struct {
		name    string
		ctype   string
		body    string
		query   string
		headers map[string]string
		want    int
	}{
		{"no token", "application/json", body, "", nil, http.StatusUnauthorized},
		{"a wrong token", "application/json", body, "", map[string]string{"Authorization": "Bearer " + strings.Repeat("0", 64)}, http.StatusUnauthorized},
		{"a form", "application/x-www-form-urlencoded", "line=1&to=sip:900@127.0.0.1", "", map[string]string{"Authorization": "Bearer " + tok}, http.StatusUnsupportedMediaType},
		{"a query only", "", "", "?line=1&to=sip:900@127.0.0.1", map[string]string{"Authorization": "Bearer " + tok}, http.StatusUnsupportedMediaType},
		{"another origin", "application/json", body, "", map[string]string{"Authorization": "Bearer " + tok, "Origin": "http://evil.example"}, http.StatusForbidden},
		{"a cross-site fetch", "text/plain", body, "", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"a rebound name", "application/json", body, "", map[string]string{"Authorization": "Bearer " + tok, "Host": "evil.example:5380"}, http.StatusMisdirectedRequest},
	} {
		req, err := http.NewRequest("POST", "http://"+addr+"/api/calls"+tc.query, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
		}
		for k, v := range tc.headers {
			if k == "Host" {
				req.Host = v
				continue
			}
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Errorf("%s: %s, want %d", tc.name, res.Status, tc.want)
		}
	}
	if n := len(rs[0].Seen()); n > 0 {
		for _, s := range rs[0].Seen() {
			if s.Method == "INVITE" {
				t.Fatalf("a call was placed: %+v", s)
			}
		}
	}
}

// TestControlTokenIsWhole: every endpoint of the call API, reads included
// (the list of calls carries numbers and Call-IDs), wants the whole control
// token: one that differs in its last character, one that has the token as
// its prefix, the token's first half and an empty one are refused alike.
func TestControlTokenIsWhole(t *testing.T) {
	rs := startRegistrars(t, "p", "b")
	addr, path := runAgent(t, settingsFile([2]int{rs[0].Port(), rs[1].Port()}))
	eventually(t, "the agent serves its status port", func() bool {
		var out, errOut bytes.Buffer
		return statusCmd([]string{"-addr", addr}, &out, &errOut) == 0
	})
	tok, err := readToken(testToken(path))
	if err != nil {
		t.Fatal(err)
	}
	last := tok[len(tok)-1:]
	other := map[string]string{"0": "1"}[last]
	if other == "" {
		other = "0"
	}
	do := func(method, path, token string) int {
		var body io.Reader
		if method == "POST" {
			body = strings.NewReader(`{"line": "1", "to": "sip:900@127.0.0.1"}`)
		}
		req, err := http.NewRequest(method, "http://"+addr+path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	endpoints := [][2]string{{"GET", "/api/calls"}, {"GET", "/api/calls/c1"}, {"POST", "/api/calls"}, {"POST", "/api/calls/c1/hangup"}}
	for _, e := range endpoints {
		for name, bad := range map[string]string{
			"the last character changed": tok[:len(tok)-1] + other,
			"the token and one more":     tok + "0",
			"the first half":             tok[:len(tok)/2],
			"empty":                      "",
		} {
			if code := do(e[0], e[1], bad); code != http.StatusUnauthorized {
				t.Errorf("%s %s with %s: %d, want 401", e[0], e[1], name, code)
			}
		}
	}
	if code := do("GET", "/api/calls", tok); code != http.StatusOK {
		t.Errorf("GET /api/calls with the token: %d, want 200", code)
	}
}

// TestRemoteStatusAddressRefused: a status address off loopback is refused
// unless -status-remote says so.
func TestRemoteStatusAddressRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lines.yaml")
	if err := os.WriteFile(path, []byte(settingsFile([2]int{5060, 5061})), 0o600); err != nil {
		t.Fatal(err)
	}
	err := serve(t.Context(), serveOptions{config: path, statusAddr: "0.0.0.0:0", tokenFile: testToken(path)}, nil, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Errorf("got %v, want the address refused", err)
	}
}

// TestCallWaitSaysHowToEnd: a call still dialing when -wait runs out goes
// on in the agent; call says so and how to end it.
func TestCallWaitSaysHowToEnd(t *testing.T) {
	const token = "t0ken"
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(runtime.CallInfo{ID: "c42", State: "dialing"})
	}))
	defer api.Close()
	tok := filepath.Join(t.TempDir(), "control.token")
	if err := os.WriteFile(tok, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := callCmd([]string{"-status-addr", strings.TrimPrefix(api.URL, "http://"), "-token-file", tok, "-wait", "100ms", "1002"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "still dialing after 100ms") || !strings.Contains(errOut.String(), "sipfailover hangup c42") {
		t.Errorf("exit %d, %q; want 1, still dialing and how to end it", code, errOut.String())
	}
}

// TestEventCommand: `sipfailover event` delivers a user's event of the line
// model to a running agent's line: user.register registers it again at
// once. A name that is no user's event is refused before the agent is
// asked, with the ones there are; a line the settings lack is named.
func TestEventCommand(t *testing.T) {
	rs := startRegistrars(t, "p", "b")
	addr, path := runAgent(t, settingsFile([2]int{rs[0].Port(), rs[1].Port()}))
	tok := testToken(path)
	eventually(t, "the line registers", rs[0].Registered)
	before, _ := registers(rs[0])
	var out, errOut bytes.Buffer
	if code := eventCmd([]string{"-addr", addr, "-token-file", tok, "user.register"}, &out, &errOut); code != 0 {
		t.Fatalf("event exited %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "line1: user.register delivered; the line is ") {
		t.Errorf("event printed %q", out.String())
	}
	eventually(t, "the primary gets a REGISTER more", func() bool { n, _ := registers(rs[0]); return n > before })
	for _, bad := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-addr", addr, "-token-file", tok, "resp.2xx"}, 2, `"resp.2xx" is not a user's event of the line model; those are user.register, user.unregister`},
		{[]string{"-addr", addr, "-token-file", tok, "user.refreshh"}, 2, "is not a user's event"},
		{[]string{"-addr", addr, "-token-file", tok, "-line", "7", "user.register"}, 1, "line 7: the settings have lines 1 to 1"},
	} {
		errOut.Reset()
		if code := eventCmd(bad.args, &out, &errOut); code != bad.code || !strings.Contains(errOut.String(), bad.want) {
			t.Errorf("event %v exited %d with %q, want %d and %q", bad.args, code, errOut.String(), bad.code, bad.want)
		}
	}
	// The API checks for itself what a client of its own may send.
	c, err := newAPIClient(addr, tok)
	if err != nil {
		t.Fatal(err)
	}
	var st runtime.Status
	for _, bad := range []struct {
		body any
		want string
	}{
		{eventRequest{Event: "resp.2xx"}, `event: "resp.2xx" is not a user's event`},
		{eventRequest{Event: ""}, `event: "" is not a user's event`},
		{map[string]string{"evnt": "user.register"}, `body: json: unknown field "evnt"`},
	} {
		if err := c.do("POST", "/api/lines/1/events", bad.body, &st); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("POST %v: %v, want %q", bad.body, err, bad.want)
		}
	}
}
