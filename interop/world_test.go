//go:build interop

package interop

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The interop suite's world: two Kamailio servers and SIPp under
// interop/kam, the program as an agent, and what the tests ask of them.

// The line's timers in these tests: short, so that the suite is quick.
const (
	t1        = 100 * time.Millisecond
	keepalive = 500 * time.Millisecond
	failback  = 2 * time.Second
	// budget is Signal Retry Counts 3 on Timer E: T1 + 2*T1 + 4*T1 (R3).
	budget = 7 * t1
	// rtt bounds a round trip through Kamailio on loopback, generously.
	rtt = 50 * time.Millisecond
	// slack is what a busy machine may add to a wall-clock measurement
	// between two processes; more than that is a fault.
	slack = 150 * time.Millisecond
)

var binary string // the sipfailover program, built once

func TestMain(m *testing.M) {
	for _, tool := range []string{"kamailio", "sipp", "sqlite3", "kamcmd", "dnsmasq"} {
		if _, err := exec.LookPath(tool); err != nil {
			fmt.Fprintf(os.Stderr, "interop: %s is missing: run interop/setup\n", tool)
			os.Exit(1)
		}
	}
	dir, err := os.MkdirTemp("", "sipfailover-interop")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "sipfailover")
	if out, err := exec.Command("go", "build", "-o", binary, "../cmd/sipfailover").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "interop: build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// world is one test's servers, far end and agent.
type world struct {
	t         *testing.T
	transport int // the line's: 0 UDP, 1 TCP
	dir       string
	ports     map[string]int // primary, backup, farend, status
	agent     *exec.Cmd
	agentTo   string // the agent's status address
	tokenFile string // where the agent writes its control token
	keepalive time.Duration
	ttl       int // seconds; 0 for the default
	// srv: the line has one server, the domain sip.interop.test, whose DNS
	// SRV records (dnsmasq) list the primary, then the backup (R20); with
	// dnsTTL seconds of TTL (0: a minute).
	srv    bool
	dnsTTL int
	extra  []string // more settings of the line, "failback_mode: registration"
	// memory: the servers keep bindings in memory, not in the shared
	// database; for stories in which both write at the same instant, which
	// SQLite's one writer at a time turns into 500s (Kamailio 5.6's
	// db_sqlite has no busy timeout).
	memory bool
	// beforeStart runs once the ports are chosen, before any server or the
	// agent starts (a capture of the whole story).
	beforeStart func(*world)
	// backoff is the all-failed back-off's base and maximum (R9); zero for
	// 1 s and 2 s.
	backoff [2]time.Duration
	// proxies: the primary and the backup are edge proxies
	// (interop/proxy.cfg.in) in front of one registrar, the line's one
	// server, and they are its outbound proxies (R22). The far end
	// registers on the registrar itself.
	proxies bool
	// outbound: the line registers through both proxies at once with RFC
	// 5626 flows, and the servers run with SIP outbound (R24).
	outbound bool
	// backupShared gives the backup (server or proxy) register_on_enable 0:
	// it shares the primary's registrations (R23).
	backupShared bool
	// registrar2: behind the proxies a second registrar, sharing the
	// first's database, the line's second server (R22).
	registrar2 bool
}

// freePort returns a port free on loopback for both UDP and TCP.
func freePort(t *testing.T) int {
	t.Helper()
	for range 50 {
		u, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		tc, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		u.Close()
		if err == nil {
			tc.Close()
			if u2, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port+1)); err == nil { // SIPp registers from port+1
				u2.Close()
				return port
			}
		}
	}
	t.Fatal("no free port")
	return 0
}

// newWorld starts a primary and a backup Kamailio and the SIPp far end
// registered through the primary, then the agent with one line over UDP.
func newWorld(t *testing.T) *world { return newWorldOver(t, 0) }

// newWorldOver is newWorld with the line on transport (0 UDP, 1 TCP).
func newWorldOver(t *testing.T, transport int) *world {
	t.Helper()
	return newWorldWith(t, &world{transport: transport, keepalive: keepalive})
}

// newWorldWith is newWorld with the line's transport, keep-alive and TTL
// from w.
func newWorldWith(t *testing.T, w *world) *world {
	t.Helper()
	w.t, w.dir, w.ports = t, t.TempDir(), map[string]int{}
	for _, n := range []string{"primary", "backup", "farend", "status", "dns", "registrar", "registrar2"} {
		w.ports[n] = freePort(t)
	}
	t.Cleanup(func() { w.kam("stopall") })
	if w.beforeStart != nil {
		w.beforeStart(w)
	}
	farEndVia := "primary"
	if w.proxies {
		w.kam(w.start("registrar")...)
		farEndVia = "registrar"
	}
	if w.registrar2 {
		w.kam(w.start("registrar2")...)
	}
	w.kam(w.start("primary")...)
	w.kam(w.start("backup")...)
	if w.srv {
		service := map[int]string{0: "_sip._udp", 1: "_sip._tcp"}[w.transport]
		w.kam("dns", fmt.Sprint(w.ports["dns"]), fmt.Sprint(cmp.Or(w.dnsTTL, 60)),
			fmt.Sprintf("--srv-host=%s.sip.interop.test,kam1.interop.test,%d,10,0", service, w.ports["primary"]),
			fmt.Sprintf("--srv-host=%s.sip.interop.test,kam2.interop.test,%d,20,0", service, w.ports["backup"]),
			"--host-record=kam1.interop.test,127.0.0.1", "--host-record=kam2.interop.test,127.0.0.1")
	}
	w.kam("farend", fmt.Sprint(w.ports["farend"]), fmt.Sprintf("127.0.0.1:%d", w.ports[farEndVia]))
	w.startAgent()
	w.waitState("primary_registered", 5*time.Second)
	return w
}

// start is the kam command that starts (or restarts) the named server as
// the world keeps its bindings.
func (w *world) start(name string) []string {
	args := []string{"start", name, fmt.Sprint(w.ports[name])}
	switch {
	case w.proxies && !strings.HasPrefix(name, "registrar"):
		args = append(args, "proxy", fmt.Sprint(w.ports["registrar"]))
	case w.memory:
		args = append(args, "memory")
	}
	if w.outbound {
		args = append(args, "outbound")
	}
	return args
}

// kamAt finds the moment interop/kam says its control took effect, in
// nanoseconds since 1970: "at 09:52:01.123456789 UTC (1796614539270430739 ns)".
var kamAt = regexp.MustCompile(`at \S+ UTC \((\d+) ns\)`)

// kam runs interop/kam and returns the moment its control took effect, or
// now.
func (w *world) kam(args ...string) time.Time {
	w.t.Helper()
	cmd := exec.Command("./kam", args...)
	cmd.Env = append(os.Environ(), "INTEROP_DIR="+w.dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		w.t.Fatalf("kam %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var ns int64
	if m := kamAt.FindSubmatch(out); m != nil {
		if _, err := fmt.Sscanf(string(m[1]), "%d", &ns); err == nil {
			return time.Unix(0, ns)
		}
	}
	if strings.HasPrefix(string(out), "at ") {
		w.t.Fatalf("kam %s printed %q, not the moment in the form %s", strings.Join(args, " "), out, kamAt)
	}
	return time.Now()
}

// settings is the agent's config: the sipfailover settings the README's
// Kamailio section shows, with short timers.
func (w *world) settings() string {
	ttl := cmp.Or(w.ttl, 3600)
	var extra string
	for _, e := range w.extra {
		extra += "    " + e + "\n"
	}
	shared := ""
	if w.backupShared {
		shared = ", register_on_enable: 0"
	}
	head, servers := "", fmt.Sprintf(`      - {addr: 127.0.0.1, port: %d, transport: %d, ttl: %d}
      - {addr: 127.0.0.1, port: %d, transport: %d, ttl: %d%s}
`, w.ports["primary"], w.transport, ttl, w.ports["backup"], w.transport, ttl, shared)
	switch {
	case w.srv:
		head = fmt.Sprintf("dns:\n  servers: [\"127.0.0.1:%d\"]\n", w.ports["dns"])
		servers = fmt.Sprintf("      - {addr: sip.interop.test, port: 0, transport: %d, ttl: %d}\n", w.transport, ttl)
	case w.proxies:
		second := ""
		if w.registrar2 {
			second = fmt.Sprintf("      - {addr: 127.0.0.1, port: %d, ttl: %d}\n", w.ports["registrar2"], ttl)
		}
		servers = fmt.Sprintf(`      - {addr: 127.0.0.1, port: %d, ttl: %d}
%s    outbound_proxies:
      - {addr: 127.0.0.1, port: %d, transport: %d}
      - {addr: 127.0.0.1, port: %d, transport: %d%s}
`, w.ports["registrar"], ttl, second, w.ports["primary"], w.transport, w.ports["backup"], w.transport, shared)
	}
	return head + fmt.Sprintf(`lines:
  - name: interop
    user: "1001"
    password: secret1001
    domain: interop.test
    t1: %v
    t2: %v
    signal_retry_counts: 3
    keepalive_interval: %v
    failback_interval: %d
    backoff_base: %v
    backoff_max: %v
%s    servers:
`, t1, 8*t1, w.keepalive, int(failback/time.Second), cmp.Or(w.backoff[0], time.Second), cmp.Or(w.backoff[1], 2*time.Second), extra) + servers
}

func (w *world) startAgent() {
	path := filepath.Join(w.dir, "lines.yaml")
	if err := os.WriteFile(path, []byte(w.settings()), 0o600); err != nil {
		w.t.Fatal(err)
	}
	w.agentTo = fmt.Sprintf("127.0.0.1:%d", w.ports["status"])
	w.tokenFile = filepath.Join(w.dir, "control.token")
	w.agent = exec.Command(binary, "run", "-config", path, "-status-addr", w.agentTo, "-token-file", w.tokenFile)
	log, err := os.Create(filepath.Join(w.dir, "agent.log"))
	if err != nil {
		w.t.Fatal(err)
	}
	w.agent.Stdout, w.agent.Stderr = log, log
	if err := w.agent.Start(); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() {
		w.agent.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- w.agent.Wait() }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			w.agent.Process.Kill()
			<-done
		}
		log.Close()
		if w.t.Failed() {
			out, _ := os.ReadFile(filepath.Join(w.dir, "agent.log"))
			w.t.Logf("agent log:\n%s", out)
		}
	})
}

type status struct {
	Bindings []struct {
		State string `json:"state"`
	} `json:"bindings"`
	State      string `json:"state"`
	Server     int    `json:"server"`
	Target     string `json:"target"`
	Where      string `json:"where"`
	Registrar  string `json:"registrar"`
	LastReason string `json:"last_reason"`
	LastEvent  string `json:"last_failure"`
	// The flow keep-alives (RFC 5626 4.4).
	FlowSent     int       `json:"flow_keepalives_sent"`
	FlowAnswered time.Time `json:"flow_keepalive_answered_at"`
}

type callInfo struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Server int    `json:"server"`
	Code   int    `json:"code"`
	Reason string `json:"reason"`
}

// api calls the agent's API, the call API with the control token the
// agent wrote, and a JSON body for a POST.
func (w *world) api(method, path string, body, out any) error {
	var rd io.Reader
	if method == "POST" {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+w.agentTo+path, rd)
	if err != nil {
		return err
	}
	if tok, err := os.ReadFile(w.tokenFile); err == nil {
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s", method, path, res.Status)
	}
	return json.NewDecoder(res.Body).Decode(out)
}

func (w *world) status() status {
	var s []status
	if err := w.api("GET", "/api/status", nil, &s); err != nil || len(s) != 1 {
		return status{}
	}
	return s[0]
}

// waitState waits until the line is in state and returns how long it took.
func (w *world) waitState(state string, within time.Duration) time.Duration {
	w.t.Helper()
	start := time.Now()
	for {
		if s := w.status(); s.State == state {
			return time.Since(start)
		}
		if time.Since(start) > within {
			w.t.Fatalf("the line is not %s after %v: %+v", state, within, w.status())
		}
		time.Sleep(5 * time.Millisecond) // polls another process
	}
}

// call places a call to the far end and waits until it is in state.
func (w *world) call(state string, within time.Duration) (callInfo, time.Duration) {
	w.t.Helper()
	var c callInfo
	start := time.Now()
	if err := w.api("POST", "/api/calls", map[string]string{"line": "1", "to": "sip:1002@interop.test"}, &c); err != nil {
		w.t.Fatal(err)
	}
	return w.waitCall(c.ID, state, within), time.Since(start)
}

func (w *world) waitCall(id, state string, within time.Duration) callInfo {
	w.t.Helper()
	start := time.Now()
	for {
		var c callInfo
		if err := w.api("GET", "/api/calls/"+id, nil, &c); err != nil {
			w.t.Fatal(err)
		}
		if c.State == state {
			return c
		}
		if time.Since(start) > within {
			w.t.Fatalf("call %s is %s after %v: %+v", id, c.State, within, c)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (w *world) hangup(id string, within time.Duration) (callInfo, time.Duration) {
	w.t.Helper()
	var c callInfo
	start := time.Now()
	if err := w.api("POST", "/api/calls/"+id+"/hangup", struct{}{}, &c); err != nil {
		w.t.Fatal(err)
	}
	return w.waitCall(id, "ended", within), time.Since(start)
}

// seen is one request a Kamailio logged on arrival.
type seen struct{ method, callID, from string }

var seenLine = regexp.MustCompile(`SEEN (\S+) (\S+) \S+ from=(\S*) `)

// seen lists what a server received, in order.
func (w *world) seen(server string) []seen {
	f, err := os.Open(filepath.Join(w.dir, server, "kamailio.log"))
	if err != nil {
		w.t.Fatal(err)
	}
	defer f.Close()
	var out []seen
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := seenLine.FindStringSubmatch(sc.Text()); m != nil {
			out = append(out, seen{m[1], m[2], m[3]})
		}
	}
	return out
}

// saw counts the requests of method from the line (1001) a server got, of
// one call when callID is set.
func (w *world) saw(server, method, callID string) int {
	n := 0
	for _, s := range w.seen(server) {
		if s.method == method && s.from == "1001" && (callID == "" || s.callID == callID) {
			n++
		}
	}
	return n
}

// farEndSaw reports whether the SIPp far end received method for the call.
func (w *world) farEndSaw(method, callID string) bool {
	logs, _ := filepath.Glob(filepath.Join(w.dir, "farend", "uas*messages.log"))
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		for _, msg := range strings.Split(string(data), "message received") {
			if strings.Contains(msg, "\n"+method+" sip:") && strings.Contains(msg, "Call-ID: "+callID) {
				return true
			}
		}
	}
	return false
}

func report(t *testing.T, what string, took, bound time.Duration, why string) {
	t.Helper()
	t.Logf("MEASURED %-48s %9v  bound %v (%s)", what, took.Round(time.Millisecond), bound, why)
	if took > bound+slack {
		t.Errorf("%s took %v, over its bound %v", what, took, bound)
	}
}
