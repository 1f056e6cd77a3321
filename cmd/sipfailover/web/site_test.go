package web

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/settings"
)

// testSite is the pages over fake settings: Apply records what it got.
type testSite struct {
	srv     *httptest.Server
	client  *http.Client
	mu      sync.Mutex
	cfg     settings.Config
	applied []settings.Config
	now     time.Time // the pages' clock
}

// advance moves the pages' clock on.
func (ts *testSite) advance(d time.Duration) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.now = ts.now.Add(d)
}

const (
	testPassword     = "correct horse"
	testMetricsToken = "scrape-me-not"
)

func newTestSite(t testing.TB) *testSite {
	t.Helper()
	hash, err := HashPassword(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	port := 5060
	ts := &testSite{cfg: settings.Config{Lines: []settings.LineConfig{
		{Name: "lobby", User: "1001", Password: "line-secret", Servers: []settings.ServerConfig{{Addr: "10.0.0.1"}, {Addr: "10.0.0.2", Port: &port}}},
		{Name: "gate", User: "1002", Password: "line-secret", Servers: []settings.ServerConfig{{Addr: "10.0.1.1"}, {Addr: "10.0.1.2"}}},
	}}}
	metrics := NewMetrics(nil)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	metrics.Observe(runtime.Transition{Line: "lobby", From: "primary_registered", To: "retrying", Event: "transport.icmp", At: at})
	metrics.Observe(runtime.Transition{Line: "lobby", From: "retrying", To: "backup_registered", Event: "resp.2xx", At: at.Add(time.Second)})
	s := &Server{
		Settings: func() settings.Config { ts.mu.Lock(); defer ts.mu.Unlock(); return ts.cfg },
		Apply: func(next settings.Config) error {
			ts.mu.Lock()
			defer ts.mu.Unlock()
			ts.applied = append(ts.applied, next)
			ts.cfg = next
			return nil
		},
		Lines: func() []runtime.Status {
			return []runtime.Status{{Line: "lobby", State: "backup_registered", Server: 2, ServerAddr: "UDP 10.0.0.2:5060",
				Where: "backup.example.test via b1.example.test:5060 at UDP 10.0.0.2:5060", Since: at,
				LastFailure: "keepalive.failed", LastReason: "ICMP port unreachable from UDP 10.0.0.1:5060", LastFailAt: at,
				Calls: 1, Waiting: "failback waits for the calls to end",
				FlowKeepalivesSent: 12, FlowKeepalivesLost: 1, FlowAnsweredAt: at, FlowRTT: 25 * time.Millisecond},
				{Line: "gate", State: "primary_registered", Server: 1, ServerAddr: "UDP 10.0.1.1:5060", Since: at,
					Bindings: []runtime.BindingStatus{{Server: 1, State: "registered"}, {Server: 2, State: "waiting"}}}}
		},
		PasswordHash: hash,
		Metrics:      metrics,
		MetricsToken: testMetricsToken,
		Counters:     func() runtime.Counters { return runtime.Counters{BadRequests: 3, Panics: 0} },
		Now:          func() time.Time { ts.mu.Lock(); defer ts.mu.Unlock(); return ts.now },
	}
	ts.now = time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	ts.srv = httptest.NewServer(s.Handler())
	t.Cleanup(ts.srv.Close)
	jar, _ := cookiejar.New(nil)
	ts.client = &http.Client{Jar: jar}
	return ts
}

func (ts *testSite) get(t testing.TB, path string) (*http.Response, string) {
	t.Helper()
	res, err := ts.client.Get(ts.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

func (ts *testSite) post(t testing.TB, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	res, err := ts.client.PostForm(ts.srv.URL+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

// csrf returns the session's token for scripts, from GET /api/csrf.
func (ts *testSite) csrf(t testing.TB) string {
	t.Helper()
	var tok struct{ CSRF string }
	_, body := ts.get(t, "/api/csrf")
	if err := json.Unmarshal([]byte(body), &tok); err != nil || tok.CSRF == "" {
		t.Fatalf("/api/csrf: %s", body)
	}
	return tok.CSRF
}

// put sends PUT /api/settings with body and the CSRF token (none when
// empty), and returns the status and the answer.
func (ts *testSite) put(t testing.TB, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("PUT", ts.srv.URL+"/api/settings", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("X-CSRF-Token", token)
	}
	res, err := ts.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// postFrom posts form to path as a page of origin would, and returns the
// status.
func (ts *testSite) postFrom(t testing.TB, origin, path string, form url.Values) int {
	t.Helper()
	req, _ := http.NewRequest("POST", ts.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", origin)
	res, err := ts.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// login logs in and returns the session's CSRF token.
func (ts *testSite) login(t testing.TB) string {
	t.Helper()
	res, body := ts.post(t, "/login", url.Values{"password": {testPassword}, "next": {"/line"}})
	if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/line" {
		t.Fatalf("login ended at %s with %d:\n%s", res.Request.URL, res.StatusCode, body)
	}
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("the line page carries no CSRF token")
	}
	return m[1]
}
