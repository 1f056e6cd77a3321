package web

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/settings"
)

// TestLoginRequired: every page and the API need a session; a wrong
// password is refused and not echoed; the cookie is HttpOnly and
// SameSite=Strict.
func TestLoginRequired(t *testing.T) {
	ts := newTestSite(t)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range []string{"/status", "/line"} {
		res, err := noFollow.Get(ts.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
			t.Errorf("GET %s without a session: %d to %q, want the login page", path, res.StatusCode, res.Header.Get("Location"))
		}
	}
	for _, path := range []string{"/api/status", "/api/settings", "/metrics", "/events"} {
		if res, _ := ts.get(t, path); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without a session: %d, want 401", path, res.StatusCode)
		}
	}
	res, body := ts.post(t, "/login", url.Values{"password": {"guess-me-not"}})
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "wrong password") || strings.Contains(body, "guess-me-not") {
		t.Errorf("a wrong password: %d, page echoes it: %v", res.StatusCode, strings.Contains(body, "guess-me-not"))
	}
	ts.advance(time.Second) // the throttle's wait after one wrong password
	res, err := noFollow.PostForm(ts.srv.URL+"/login", url.Values{"password": {testPassword}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var c *http.Cookie
	for _, x := range res.Cookies() {
		if x.Name == cookieName {
			c = x
		}
	}
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie %+v, want HttpOnly and SameSite=Strict", c)
	}
}

// TestSafeNext: the page after login stays on this site.
func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{"/line?line=2": "/line?line=2", "": "/status", "https://evil.example/": "/status",
		"//evil.example/x": "/status", "status": "/status"} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// goodForm is line 1's form, as the page shows it, with a new backup.
func goodForm(csrf string) url.Values {
	return url.Values{"csrf": {csrf}, "line": {"1"}, "user": {"1001"}, "auth_user": {"1001"}, "display_name": {"Lobby"}, "domain": {""},
		"server1_addr": {"10.0.0.1"}, "server1_port": {"5060"}, "server1_ttl": {"3600"}, "server1_transport": {"0"},
		"server2_addr": {"backup.example.com"}, "server2_port": {"5070"}, "server2_ttl": {"600"}, "server2_transport": {"1"},
		"enable_failback": {"1"}, "failback_interval": {"900"}, "signal_retry_counts": {"4"},
		"invite_retry_counts": {"2"}, "failback_mode": {"registration"}, "failback_when": {"always"}, "registration_mode": {"successive"},
		"t1": {"500ms"}, "t2": {"4s"}, "retry_mode": {"count"}, "retry_time": {"4s"}, "keepalive_interval": {"0s"},
		"nat_keepalive_interval": {"30s"}, "nat_keepalive_mode": {"auto"}, "unavailable_codes": {"500, 503"}}
}

// TestSubmitApplies: R15, a good form is applied whole: the backup and the
// basic settings change, the rest of the line (password included) stays.
func TestSubmitApplies(t *testing.T) {
	ts := newTestSite(t)
	csrf := ts.login(t)
	res, body := ts.post(t, "/line", goodForm(csrf))
	if res.StatusCode != http.StatusOK || res.Request.URL.RawQuery != "line=1&saved=1" || !strings.Contains(body, `id="saved"`) {
		t.Fatalf("submit: %d at %s:\n%s", res.StatusCode, res.Request.URL, body)
	}
	if len(ts.applied) != 1 {
		t.Fatalf("applied %d times, want once", len(ts.applied))
	}
	l := ts.applied[0].Lines[0]
	b := l.Servers[1]
	if b.Addr != "backup.example.com" || *b.Port != 5070 || *b.TTL != 600 || *b.Transport != 1 ||
		*l.FailbackInterval != 900 || *l.SignalRetryCounts != 4 || l.Password != "line-secret" || l.User != "1001" ||
		*l.InviteRetryCounts != 2 || l.FailbackMode != "registration" || l.FailbackWhen != "always" {
		t.Fatalf("applied line %+v, backup %+v", l, b)
	}
	if ts.applied[0].Lines[1].Servers[0].Addr != "10.0.1.1" {
		t.Fatal("line 2 changed")
	}
	if strings.Contains(body, "line-secret") {
		t.Fatal("the page shows the line's password")
	}
}

// TestAdvancedSettings: item 11 of the polish issue. The Line page shows
// the timers, the retry mode and time, both keep-alives and the unavailable
// codes, as a desk phone's Advanced section; a change applies, an unchanged
// form keeps the defaults as they were (no unavailable_codes written empty),
// and Cancel goes back to the running values.
func TestAdvancedSettings(t *testing.T) {
	ts := newTestSite(t)
	csrf := ts.login(t)
	_, page := ts.get(t, "/line?line=1")
	for _, want := range []string{`id="t1" name="t1" value="500ms"`, `id="t2" name="t2" value="4s"`, `id="retry_time" name="retry_time" value="4s"`,
		`id="keepalive_interval" name="keepalive_interval" value="0s"`, `id="nat_keepalive_interval" name="nat_keepalive_interval" value="30s"`,
		`id="unavailable_codes" name="unavailable_codes" value="500, 503"`, `<option value="auto" selected>`, `id="cancel" href="/line?line=1"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the Line page lacks %s", want)
		}
	}
	form := goodForm(csrf)
	form.Set("t1", "200ms")
	form.Set("retry_mode", "time")
	form.Set("retry_time", "2s")
	form.Set("keepalive_interval", "20s")
	form.Set("nat_keepalive_interval", "15s")
	form.Set("nat_keepalive_mode", "crlf")
	form.Set("unavailable_codes", "500 503, 480")
	if res, body := ts.post(t, "/line", form); res.StatusCode != http.StatusOK {
		t.Fatalf("submit: %d:\n%s", res.StatusCode, body)
	}
	l := ts.applied[0].Lines[0]
	if time.Duration(l.T1) != 200*time.Millisecond || l.RetryMode != "time" || time.Duration(l.RetryTime) != 2*time.Second ||
		time.Duration(l.KeepaliveInterval) != 20*time.Second || time.Duration(*l.NATKeepaliveInterval) != 15*time.Second ||
		l.NATKeepaliveMode != "crlf" || !slices.Equal(l.UnavailableCodes, []int{500, 503, 480}) {
		t.Fatalf("applied %+v", l)
	}
	form = goodForm(csrf)
	form.Set("unavailable_codes", "")
	if res, body := ts.post(t, "/line", form); res.StatusCode != http.StatusOK {
		t.Fatalf("submit without codes: %d:\n%s", res.StatusCode, body)
	}
	if codes := ts.applied[1].Lines[0].UnavailableCodes; codes != nil {
		t.Fatalf("no codes given stored %v, want none written (the default, 500 and 503)", codes)
	}
}

// TestBadFormChangesNothing: R2, R15, each bad input is refused with a
// message beside its field, and nothing is applied.
func TestBadFormChangesNothing(t *testing.T) {
	ts := newTestSite(t)
	csrf := ts.login(t)
	for _, tt := range []struct {
		name, field, value, want string
	}{
		{"empty address", "server2_addr", "", "empty"},
		{"port 70000", "server1_port", "70000", "outside 0-65535"},
		{"transport 4", "server2_transport", "4", "is not 0 (UDP), 1 (TCP), 3 (TLS) or 2"},
		{"NAPTR with a port", "server2_transport", "2", "the port must be 0 or left out"},
		{"negative interval", "failback_interval", "-5", "-5s is below the minimum 1s"},
		{"script in a field", "server1_addr", `<script>alert(1)</script>`, "neither an IP address nor a domain name"},
		{"not a number", "signal_retry_counts", "three", "must be a whole number"},
		{"INVITE budget 11", "invite_retry_counts", "11", "above the maximum 10"},
		{"unknown failback mode", "failback_mode", "sometimes", "is not one of duration, registration, new_requests, dns_ttl"},
		{"dns_ttl with an address", "failback_mode", "dns_ttl", "servers[0].addr 10.0.0.1 is an address"},
		{"unknown failback_when", "failback_when", "never", "is not idle or always"},
		{"unknown registration mode", "registration_mode", "parallel", "is not successive or concurrent"},
		{"T1 not a duration", "t1", "fast", "must be a duration such as 500ms"},
		{"T1 under 1ms", "t1", "999us", "999us is below the minimum 1ms"},
		{"T2 under T1", "t2", "100ms", "100ms is below t1 (500ms)"},
		{"retry time under 1ms", "retry_time", "999us", "999us is below the minimum 1ms"},
		{"unknown retry mode", "retry_mode", "often", "is not count or time"},
		{"negative keep-alive", "keepalive_interval", "-1s", "must be 0 (off) or positive"},
		{"NAT keep-alive under 1s", "nat_keepalive_interval", "999ms", "999ms is below the minimum 1s"},
		{"NAT keep-alive over 1h", "nat_keepalive_interval", "2h", "above the maximum 1h"},
		{"unknown NAT keep-alive mode", "nat_keepalive_mode", "stun", "is not auto (STUN over UDP) or crlf"},
		{"a code that is no number", "unavailable_codes", "500, five", "is not a response code"},
		{"a code that is no failure", "unavailable_codes", "200", "200 is not a final failure code"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			form := goodForm(csrf)
			form.Set(tt.field, tt.value)
			res, body := ts.post(t, "/line", form)
			if res.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422", res.StatusCode)
			}
			beside := regexp.MustCompile(`id="` + tt.field + `"[^>]*>(?:[^<]*<option[^>]*>[^<]*</option>)*[^<]*(?:</select>)?<span class="err" id="` + tt.field + `-error">([^<]*)</span>`)
			m := beside.FindStringSubmatch(body)
			if m == nil || !strings.Contains(m[1], tt.want) {
				t.Fatalf("no message %q beside %s:\n%s", tt.want, tt.field, body)
			}
			if strings.Contains(body, "<script>alert") {
				t.Fatal("the page echoes the script unescaped")
			}
			if len(ts.applied) != 0 {
				t.Fatalf("a bad form was applied: %+v", ts.applied)
			}
		})
	}
}

// TestCSRF: a POST without the session's token, or from another origin,
// is refused and changes nothing.
func TestCSRF(t *testing.T) {
	ts := newTestSite(t)
	csrf := ts.login(t)
	form := goodForm("0000")
	if res, _ := ts.post(t, "/line", form); res.StatusCode != http.StatusForbidden {
		t.Fatalf("a forged token: %d, want 403", res.StatusCode)
	}
	if code := ts.postFrom(t, "https://evil.example", "/line", goodForm(csrf)); code != http.StatusForbidden {
		t.Fatalf("another origin: %d, want 403", code)
	}
	if len(ts.applied) != 0 {
		t.Fatal("a forged form was applied")
	}
}

// TestAPIAndMetrics: the JSON API never shows a password; /metrics counts
// per line.
func TestAPIAndMetrics(t *testing.T) {
	ts := newTestSite(t)
	ts.login(t)
	_, body := ts.get(t, "/api/settings")
	if strings.Contains(body, "line-secret") || !strings.Contains(body, "10.0.0.2") {
		t.Fatalf("/api/settings: %s", body)
	}
	_, body = ts.get(t, "/api/status")
	if !strings.Contains(body, `"state":"backup_registered"`) {
		t.Fatalf("/api/status: %s", body)
	}
	_, body = ts.get(t, "/metrics")
	for _, want := range []string{
		`sipfailover_line_state{line="lobby",state="backup_registered"} 1`,
		`sipfailover_line_state{line="lobby",state="retrying"} 0`,
		`sipfailover_failovers_total{line="lobby"} 1`,
		`sipfailover_failbacks_total{line="lobby"} 0`,
		`sipfailover_state_seconds_total{line="lobby",state="retrying"} 1`,
		`sipfailover_request_failures_total{line="lobby",reason="transport.icmp"} 1`,
		`sipfailover_flow_keepalives_total{line="lobby"} 12`,
		`sipfailover_flow_keepalives_lost_total{line="lobby"} 1`,
		`sipfailover_flow_keepalive_rtt_seconds{line="lobby"} 0.025`,
		`sipfailover_flow_keepalives_total{line="gate"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, `sipfailover_flow_keepalive_rtt_seconds{line="gate"}`) {
		t.Error("/metrics has a keep-alive round trip for a line none of whose keep-alives was answered")
	}
}

// TestStatusPageAndEvents: the status page draws the diagram with every
// state's id, and /events sends the lines' status at once.
func TestStatusPageAndEvents(t *testing.T) {
	ts := newTestSite(t)
	ts.login(t)
	_, body := ts.get(t, "/status")
	for _, want := range []string{`id="state_backup_registered"`, `id="state_primary_registered"`, `data-state="backup_registered"`, "backup.example.test via b1.example.test:5060 at UDP 10.0.0.2:5060",
		"bindings: 1 registered; 2 waiting;",
		`title="backup_registered">Registered on a backup, server 2 (UDP 10.0.0.2:5060)`, `data-label="Last failure"`,
		// The keep-alive failed by ICMP, not silence; when, and what the line waits for.
		">The keep-alive failed<", "ICMP port unreachable from UDP 10.0.0.1:5060", `class="failed-at"`, " ago</small>",
		`<small class="waiting">failback waits for the calls to end</small>`, `<small class="calls">calls: 1</small>`,
		// The flow keep-alive's health: answered when, and in how long.
		`title="flow keep-alives: 12 sent, 1 lost">keep-alive answered `, ` ago in 25ms</small>`} {
		if !strings.Contains(body, want) {
			t.Errorf("status page lacks %s", want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.srv.URL+"/events", nil)
	res, err := ts.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "data: ") {
			if !strings.Contains(line, `"line":"gate"`) {
				t.Fatalf("first event %s lacks the lines", line)
			}
			return
		}
	}
	t.Fatal("no event came")
}

// TestAPIPutSettings: R15 through the API. A PUT with the session's token
// replaces the settings, keeping the passwords it leaves empty; a bad one
// names the line and field and changes nothing; one without the token is
// refused.
func TestAPIPutSettings(t *testing.T) {
	ts := newTestSite(t)
	ts.login(t)
	tok := ts.csrf(t)
	put := func(token, body string) (int, string) { return ts.put(t, token, body) }
	good := `{"lines": [
		{"name": "lobby", "user": "1001", "servers": [{"addr": "10.0.0.1"}, {"addr": "10.0.0.9", "port": 5080}], "t1": "250ms"},
		{"name": "gate", "user": "1002", "servers": [{"addr": "10.0.1.1"}, {"addr": "10.0.1.2"}]}]}`
	if code, _ := put("", good); code != http.StatusForbidden {
		t.Fatalf("a PUT without the token: %d, want 403", code)
	}
	bad := strings.Replace(good, `"port": 5080`, `"port": 70000`, 1)
	code, body := put(tok, bad)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, `"field":"servers[1].port"`) || !strings.Contains(body, `"line":"line 1 (lobby)"`) {
		t.Fatalf("a bad PUT: %d %s", code, body)
	}
	if len(ts.applied) != 0 {
		t.Fatal("a refused PUT was applied")
	}
	code, body = put(tok, good)
	if code != http.StatusOK || strings.Contains(body, "line-secret") {
		t.Fatalf("a good PUT: %d %s", code, body)
	}
	if len(ts.applied) != 1 {
		t.Fatalf("applied %d times, want once", len(ts.applied))
	}
	l := ts.applied[0].Lines[0]
	if *l.Servers[1].Port != 5080 || l.Password != "line-secret" || time.Duration(l.T1) != 250*time.Millisecond {
		t.Fatalf("applied %+v", l)
	}
}

// TestLoginThrottled: item 5 of the settings issue. Each wrong password
// makes the client wait twice as long before its next try (1 s, 2 s, 4 s
// ...), the right password included; waiting it out lets it in.
func TestLoginThrottled(t *testing.T) {
	ts := newTestSite(t)
	for i, wait := range []string{"1", "2", "4"} {
		if res, _ := ts.post(t, "/login", url.Values{"password": {"guess"}}); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i+1, res.StatusCode)
		}
		res, body := ts.post(t, "/login", url.Values{"password": {testPassword}})
		if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") != wait || !strings.Contains(body, "too many wrong passwords") {
			t.Fatalf("after guess %d: %d, Retry-After %q, want 429 and %s", i+1, res.StatusCode, res.Header.Get("Retry-After"), wait)
		}
		n, _ := time.ParseDuration(wait + "s")
		ts.advance(n - time.Millisecond)
		if res, _ := ts.post(t, "/login", url.Values{"password": {testPassword}}); res.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("a millisecond before the wait ends: %d, want 429", res.StatusCode)
		}
		ts.advance(time.Millisecond)
	}
	ts.login(t)
}

// TestLoginFromAnotherOriginRefused: a login form posted from another
// site is refused, the right password or not.
func TestLoginFromAnotherOriginRefused(t *testing.T) {
	ts := newTestSite(t)
	if code := ts.postFrom(t, "https://evil.example", "/login", url.Values{"password": {testPassword}}); code != http.StatusForbidden {
		t.Errorf("a login from another origin: %d, want 403", code)
	}
}

// TestSessionExpires: a session lasts sessionLife, not a second more.
func TestSessionExpires(t *testing.T) {
	ts := newTestSite(t)
	ts.login(t)
	ts.advance(sessionLife)
	if res, _ := ts.get(t, "/api/status"); res.StatusCode != http.StatusOK {
		t.Fatalf("at the end of its life the session is refused: %d", res.StatusCode)
	}
	ts.advance(time.Second)
	if res, _ := ts.get(t, "/api/status"); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("a second past its life the session still works: %d", res.StatusCode)
	}
}

// TestMetricsScrapedWithToken: item 6. Prometheus scrapes with the bearer
// token of the settings (no login); a wrong token is refused; the agent's
// edge counters and the Go runtime's are there.
func TestMetricsScrapedWithToken(t *testing.T) {
	ts := newTestSite(t)
	get := func(token string) (int, string) {
		req, _ := http.NewRequest("GET", ts.srv.URL+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, _ := get("wrong"); code != http.StatusUnauthorized {
		t.Errorf("a wrong token: %d, want 401", code)
	}
	code, body := get(testMetricsToken)
	if code != http.StatusOK {
		t.Fatalf("the token: %d", code)
	}
	for _, want := range []string{`sipfailover_failovers_total{line="lobby"} 1`, `sipfailover_dropped_messages_total{why="bad_request"} 3`,
		"go_goroutines ", "sipfailover_contained_panics_total 0"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestAPIPutRenameKeepsPassword: item 3. A PUT that renames a line and
// leaves its password empty keeps the line's password (the line in the
// same place), as the docs say an empty password does.
func TestAPIPutRenameKeepsPassword(t *testing.T) {
	ts := newTestSite(t)
	ts.login(t)
	renamed := `{"lines": [
		{"name": "front-door", "user": "1001", "servers": [{"addr": "10.0.0.1"}, {"addr": "10.0.0.2"}]},
		{"name": "gate", "user": "1002", "servers": [{"addr": "10.0.1.1"}, {"addr": "10.0.1.2"}]}]}`
	if code, body := ts.put(t, ts.csrf(t), renamed); code != http.StatusOK || len(ts.applied) != 1 {
		t.Fatalf("PUT: %d %s, applied %d", code, body, len(ts.applied))
	}
	if l := ts.applied[0].Lines[0]; l.Name != "front-door" || l.Password != "line-secret" {
		t.Errorf("renamed line %q has password %q, want the old one", l.Name, l.Password)
	}
}

// TestFormReportsEveryProblemAtOnce: item 8. A field that is no number no
// longer hides the range errors of the others until the next Submit.
func TestFormReportsEveryProblemAtOnce(t *testing.T) {
	ts := newTestSite(t)
	csrf := ts.login(t)
	form := goodForm(csrf)
	form.Set("signal_retry_counts", "three")
	form.Set("server1_port", "70000")
	form.Set("failback_interval", "0")
	res, body := ts.post(t, "/line", form)
	if res.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422", res.StatusCode)
	}
	for _, want := range []string{"must be a whole number", "70000 is outside 0-65535", "0s is below the minimum 1s"} {
		if !strings.Contains(body, want) {
			t.Errorf("the form lacks %q", want)
		}
	}
	if len(ts.applied) != 0 {
		t.Error("a bad form was applied")
	}
}

// TestMetricsPassPromtool: what a scraper gets with the token is a valid
// exposition by Prometheus' own linter (promtool, from Debian's prometheus
// package, which .ci/install-deps installs). Outside CI, without promtool,
// the test is skipped.
func TestMetricsPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool is not installed: .ci/install-deps prometheus")
		}
		t.Skip("promtool is not installed")
	}
	ts := newTestSite(t)
	req, _ := http.NewRequest("GET", ts.srv.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testMetricsToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = res.Body
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestSubmitKeepsEveryServer: a line of four servers keeps the third and
// the fourth through a Submit of the page, which shows two.
func TestSubmitKeepsEveryServer(t *testing.T) {
	ts := newTestSite(t)
	ts.mu.Lock()
	ts.cfg.Lines[0].Servers = append(ts.cfg.Lines[0].Servers, settings.ServerConfig{Addr: "10.0.0.3"}, settings.ServerConfig{Addr: "10.0.0.4"})
	ts.mu.Unlock()
	csrf := ts.login(t)
	if res, body := ts.post(t, "/line", goodForm(csrf)); res.StatusCode != http.StatusOK {
		t.Fatalf("submit: %d\n%s", res.StatusCode, body)
	}
	s := ts.applied[0].Lines[0].Servers
	if len(s) != 4 || s[2].Addr != "10.0.0.3" || s[3].Addr != "10.0.0.4" {
		t.Fatalf("after a Submit the line has servers %+v", s)
	}
}

// TestMetricsForgetRemovedLines: item 6. A line removed from the settings
// takes its series with it.
func TestMetricsForgetRemovedLines(t *testing.T) {
	m := NewMetrics(nil)
	m.Observe(runtime.Transition{Line: "gone", From: "idle", To: "registering", Event: "user.register", At: time.Now()})
	srv := httptest.NewServer(m.Handler(nil, nil))
	defer srv.Close()
	scrape := func() string {
		res, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	if !strings.Contains(scrape(), `line="gone"`) {
		t.Fatal("the line's series are missing")
	}
	m.Forget("gone")
	if strings.Contains(scrape(), `line="gone"`) {
		t.Fatal("a removed line's series stay")
	}
}

// TestAdvancedLimitsThroughTheForm: the edges of the Advanced section's
// bounds go through the page as through the file: the NAT keep-alive at 0s
// (off), 1s and 1h accepted, 999ms and 1h0m0.001s refused; T1 at 1ms
// accepted, 999us refused; the OPTIONS keep-alive at 0s accepted, -1ns
// refused.
func TestAdvancedLimitsThroughTheForm(t *testing.T) {
	ts := newTestSite(t)
	csrf := ts.login(t)
	for _, c := range []struct {
		field, value string
		ok           bool
	}{
		{"nat_keepalive_interval", "0s", true}, {"nat_keepalive_interval", "1s", true}, {"nat_keepalive_interval", "1h", true},
		{"nat_keepalive_interval", "999ms", false}, {"nat_keepalive_interval", "1h0m0.001s", false},
		{"t1", "1ms", true}, {"t1", "999us", false},
		{"keepalive_interval", "0s", true}, {"keepalive_interval", "-1ns", false},
	} {
		form := goodForm(csrf)
		form.Set(c.field, c.value)
		res, body := ts.post(t, "/line", form)
		if got := res.StatusCode == http.StatusOK; got != c.ok {
			t.Errorf("%s %s: status %d, want accepted=%v", c.field, c.value, res.StatusCode, c.ok)
		}
		if !c.ok && !strings.Contains(body, `id="`+c.field+`-error"`) {
			t.Errorf("%s %s refused with no message beside the field", c.field, c.value)
		}
	}
}

// TestLimitsThroughTheForm: the edges of the port go through the page as
// through the file: 1 and 65535 accepted, 0 and 65536 refused beside the
// field.
func TestLimitsThroughTheForm(t *testing.T) {
	ts := newTestSite(t)
	csrf := ts.login(t)
	for port, ok := range map[string]bool{"0": true, "1": true, "65535": true, "-1": false, "65536": false} {
		form := goodForm(csrf)
		form.Set("server1_port", port)
		res, body := ts.post(t, "/line", form)
		if got := res.StatusCode == http.StatusOK; got != ok {
			t.Errorf("port %s: status %d, want accepted=%v", port, res.StatusCode, ok)
		}
		if !ok && !strings.Contains(body, "is outside 0-65535") {
			t.Errorf("port %s: no message beside the field", port)
		}
	}
}

// TestLimitsThroughTheAPI: the port's edges through PUT /api/settings as
// through the file and the form.
func TestLimitsThroughTheAPI(t *testing.T) {
	ts := newTestSite(t)
	ts.login(t)
	putLimits(t, ts, ts.csrf(t), `{"lines": [{"name": "lobby", "user": "1001", "servers": [{"addr": "10.0.0.1", "port": %d}, {"addr": "10.0.0.2"}]},
		{"name": "gate", "user": "1002", "servers": [{"addr": "10.0.1.1"}, {"addr": "10.0.1.2"}]}]}`,
		"servers[0].port", map[int]bool{0: true, 1: true, 65535: true, -1: false, 65536: false})
}

// TestLineOfOneName: R20, a line whose one server is a domain name looked
// up in DNS SRV shows on the Line page with an empty backup; a Submit that
// leaves the backup empty keeps one server, one that fills it in adds it.
func TestLineOfOneName(t *testing.T) {
	ts := newTestSite(t)
	ts.mu.Lock()
	ts.cfg.Lines[0].Servers = []settings.ServerConfig{{Addr: "sip.example.com", Port: new(0), Transport: new(settings.TransportAuto)}}
	ts.mu.Unlock()
	csrf := ts.login(t)
	res, body := ts.get(t, "/line?line=1")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `value="sip.example.com"`) || !strings.Contains(body, "DNS NAPTR chooses") {
		t.Fatalf("GET: %d\n%s", res.StatusCode, body)
	}
	form := goodForm(csrf)
	form.Set("server1_addr", "sip.example.com")
	form.Set("server1_port", "0")
	form.Set("server1_transport", "2")
	for _, k := range []string{"server2_addr", "server2_port", "server2_ttl", "server2_transport"} {
		form.Set(k, "")
	}
	if res, body := ts.post(t, "/line", form); res.StatusCode != http.StatusOK || len(ts.applied) != 1 {
		t.Fatalf("submit without a backup: %d, applied %d\n%s", res.StatusCode, len(ts.applied), body)
	}
	if got := ts.applied[0].Lines[0].Servers; len(got) != 1 || got[0].Addr != "sip.example.com" {
		t.Fatalf("applied servers %+v, want the one name", got)
	}
	form = goodForm(csrf)
	form.Set("server1_addr", "sip.example.com")
	form.Set("server1_port", "0")
	form.Set("server1_transport", "2")
	if res, body := ts.post(t, "/line", form); res.StatusCode != http.StatusOK || len(ts.applied) != 2 {
		t.Fatalf("submit with a backup: %d\n%s", res.StatusCode, body)
	}
	if got := ts.applied[1].Lines[0].Servers; len(got) != 2 || got[1].Addr != "backup.example.com" {
		t.Fatalf("applied servers %+v, want the name and the backup", got)
	}
}

// TestLinePageAsAPhoneShowsIt: the Line page has the account (user,
// authentication user, a password that is never shown, display name,
// domain), labels with the line's number as the seed writes SIPN (SIP2 for
// line 2), transports by name, and the line's registration in words; a
// password left empty keeps the line's, a new one replaces it.
func TestLinePageAsAPhoneShowsIt(t *testing.T) {
	ts := newTestSite(t)
	csrf := ts.login(t)
	_, body := ts.get(t, "/line?line=2")
	for _, want := range []string{`id="user" name="user" value="1002"`, "SIP2 User", "SIP2 Authentication User", "SIP2 Register Addr",
		"SIP2 Backup Transport", `id="password" name="password" type="password" value=""`, ">UDP<", ">TLS<",
		"Registered on the primary, server 1 (UDP 10.0.1.1:5060)"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(body, "line-secret") {
		t.Error("the page shows the password")
	}
	form := goodForm(csrf)
	form.Set("display_name", "Front desk")
	if res, _ := ts.post(t, "/line", form); res.StatusCode != http.StatusOK {
		t.Fatalf("submit: %d", res.StatusCode)
	}
	form.Set("password", "new-secret")
	if res, _ := ts.post(t, "/line", form); res.StatusCode != http.StatusOK {
		t.Fatalf("submit: %d", res.StatusCode)
	}
	if a := ts.applied; len(a) != 2 || a[0].Lines[0].Password != "line-secret" || a[0].Lines[0].DisplayName != "Front desk" ||
		a[1].Lines[0].Password != "new-secret" {
		t.Fatalf("applied %+v", a)
	}
	form.Set("user", "")
	if res, body := ts.post(t, "/line", form); res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `id="user-error"`) {
		t.Errorf("an empty user: %d, no message beside the field", res.StatusCode)
	}
}
