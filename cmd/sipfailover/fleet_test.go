package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/runtimetest"
	"github.com/sipfailover/sipfailover/runtime/settings"
)

// TestFleet: R21. Twenty lines made from one template register on the
// primary, fail over to the backup when it dies, and fail back when it
// returns; the report counts twenty failovers and twenty stays on the
// backup, every line back on the primary, and what each server was sent.
func TestFleet(t *testing.T) {
	const n = 20
	users := map[string]string{}
	for i := 1; i <= n; i++ {
		users[fmt.Sprintf("3%03d", i)] = fmt.Sprintf("pw-%d", i)
	}
	loc := runtimetest.NewLocation()
	var rs []*runtimetest.Registrar
	for _, name := range []string{"primary", "backup"} {
		r := &runtimetest.Registrar{Name: name, Users: users, Location: loc}
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Stop)
		rs = append(rs, r)
	}
	cfg, err := settings.Parse([]byte(fmt.Sprintf(`lines:
  - user: template
    t1: 20ms
    keepalive_interval: 200ms
    failback_interval: 1
    servers:
      - {addr: 127.0.0.1, port: %d}
      - {addr: 127.0.0.1, port: %d}
`, rs[0].Port(), rs[1].Port())))
	if err != nil {
		t.Fatal(err)
	}
	f, err := newFleet(cfg, fleetOptions{lines: n, userPattern: "3%03d", passwordPattern: "pw-%d", startRate: 200, spread: 20,
		pacing: settings.Pacing{Rate: 100, Burst: 5}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.run(ctx); close(done) }()
	all := func(state string) func() bool {
		return func() bool {
			for _, l := range f.lines {
				if l.State().String() != state {
					return false
				}
			}
			return true
		}
	}
	eventually(t, "every line on the primary", all("primary_registered"))
	checkLivePage(t, f, n)
	rs[0].Stop()
	eventually(t, "every line on the backup", all("backup_registered"))
	if err := rs[0].Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "every line back on the primary", all("primary_registered"))
	cancel()
	<-done
	var out bytes.Buffer
	f.report(&out)
	report := out.String()
	t.Logf("the report:\n%s", report)
	for _, want := range []string{"fleet: 20 lines", "failovers, from the fault a line saw (its first request the primary left unanswered or failed) to registered on a backup: 20, p50",
		"time on a backup, from registered there to registered on the primary again: 20, p50", "failbacks, from the probe that succeeded to registered on the primary: 20, p50",
		fmt.Sprintf("UDP 127.0.0.1:%d", rs[0].Port()), fmt.Sprintf("UDP 127.0.0.1:%d", rs[1].Port())} {
		if !strings.Contains(report, want) {
			t.Errorf("the report lacks %q:\n%s", want, report)
		}
	}
	if !strings.Contains(report, "(pacing: at most 5 at once, then 100 a second)") {
		t.Errorf("the report does not say how requests were paced:\n%s", report)
	}
	// Each server's busiest second held at most the burst and a second's rate.
	for _, r := range rs {
		l := f.network.load(fmt.Sprintf("UDP 127.0.0.1:%d", r.Port()))
		if l.requests == 0 || l.messages < l.requests || l.peak > 105 {
			t.Errorf("%s: %+v, want some new requests, no more than the messages, at most 105 in a second", r.Name, l)
		}
	}
	if !strings.Contains(report, "lines per state at the end, before de-registering: primary_registered 20\n") {
		t.Errorf("the run ended with every line on the primary:\n%s", report)
	}
	for _, l := range f.lines {
		if st := l.State().String(); st != "idle" {
			t.Fatalf("after the run a line is %s, want every line unregistered", st)
		}
	}
	picture := filepath.Join(t.TempDir(), "fleet.svg")
	if err := f.picture(picture); err != nil {
		t.Fatal(err)
	}
	svg, err := os.ReadFile(picture)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "20 lines: how many in each state", ">idle<", "new requests a second, per server",
		fmt.Sprintf("server 2 (backup): UDP 127.0.0.1:%d", rs[1].Port()), fmt.Sprintf("server 1 (primary): UDP 127.0.0.1:%d", rs[0].Port()),
		"fault seen", "primary back"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("the picture lacks %q", want)
		}
	}
	if err := f.picture(filepath.Join(t.TempDir(), "fleet.gif")); err == nil {
		t.Error("a .gif picture was accepted")
	}
}

// TestFleetRefusesWhatCannotWork: a fleet with one user for every line, a
// start rate of 0 or no lines is refused before anything starts.
func TestFleetRefusesWhatCannotWork(t *testing.T) {
	cfg, err := settings.Parse([]byte("lines:\n  - user: a\n    servers: [{addr: 127.0.0.1}, {addr: 127.0.0.2}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []fleetOptions{
		{lines: 10, userPattern: "2000", startRate: 50},
		{lines: 10, userPattern: "2%03d", startRate: 0},
		{lines: 0, userPattern: "2%03d", startRate: 50},
		{lines: 100001, userPattern: "2%03d", startRate: 50},
		{lines: 10, userPattern: "2%03d", startRate: 50, spread: 51},
		{lines: 10, userPattern: "2%03d", startRate: 50, spread: -1},
		{lines: 10, userPattern: "2%03d", startRate: 50, pacing: settings.Pacing{Rate: 10}},
		{lines: 10, userPattern: "2%03d", startRate: 50, pacing: settings.Pacing{Rate: -1, Burst: 1}},
	} {
		if _, err := newFleet(cfg, o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	if code := run([]string{"fleet", "-lines", "3"}, new(bytes.Buffer), new(bytes.Buffer)); code != 2 {
		t.Errorf("fleet without -config: exit %d, want 2", code)
	}
	path := filepath.Join(t.TempDir(), "lines.yaml")
	if err := os.WriteFile(path, []byte("lines:\n  - user: a\n    servers: [{addr: 127.0.0.1}, {addr: 127.0.0.2}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := run([]string{"fleet", "-config", path, "-status-addr", "0.0.0.0:0"}, new(bytes.Buffer), &stderr); code != 2 || !strings.Contains(stderr.String(), "not a loopback address") {
		t.Errorf("a live report off loopback: exit %d, %s", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"fleet", "-config", path, "-rate", "10", "-burst", "0"}, new(bytes.Buffer), &stderr); code != 2 || !strings.Contains(stderr.String(), "pacing.burst") {
		t.Errorf("-burst 0: exit %d, %s", code, stderr.String())
	}
}

// checkLivePage reads the live report of a running fleet of n lines on
// its page, as JSON and as pictures, and checks that a request naming
// another host is refused.
func checkLivePage(t *testing.T, f *fleet, n int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := f.serveFleet(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	get := func(path, host string) (int, http.Header, []byte) {
		req, err := http.NewRequest("GET", base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, body
	}
	code, _, page := get("/", "")
	if code != 200 || !bytes.Contains(page, []byte(fmt.Sprintf("Fleet of %d lines", n))) || !bytes.Contains(page, []byte("lines per state now: primary_registered")) {
		t.Errorf("the page: %d\n%s", code, page)
	}
	code, _, js := get("/report.json", "")
	var rep fleetReport
	if err := json.Unmarshal(js, &rep); code != 200 || err != nil {
		t.Fatalf("report.json: %d %v\n%s", code, err, js)
	}
	sum := 0
	for _, c := range rep.States {
		sum += c
	}
	if rep.Lines != n || sum != n || rep.Ended || len(rep.Servers) == 0 || rep.Servers[0].Number != 1 || rep.Servers[0].NewRequests == 0 {
		t.Errorf("report.json: %+v, want %d lines in all, running, server 1 first with requests", rep, n)
	}
	if code, h, png := get("/picture.png", ""); code != 200 || h.Get("Content-Type") != "image/png" || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("picture.png: %d %s, %d bytes", code, h.Get("Content-Type"), len(png))
	}
	if code, _, svg := get("/picture.svg", ""); code != 200 || !bytes.Contains(svg, []byte("<svg")) {
		t.Errorf("picture.svg: %d", code)
	}
	if code, _, _ := get("/picture.gif", ""); code != http.StatusNotFound {
		t.Errorf("picture.gif: %d, want 404", code)
	}
	if code, _, _ := get("/report.json", "attacker.example:80"); code != http.StatusMisdirectedRequest {
		t.Errorf("a request for another host: %d, want 421", code)
	}
}

// TestFleetFailoverCountsDetection: a failover is timed from the fault the
// line saw (the first transmission of the request the primary left
// unanswered), not from the moment the line gave up on it: a line whose
// refresh went unanswered for its budget of 1.5 s and that registered on
// the backup 20 ms later took 1.52 s.
func TestFleetFailoverCountsDetection(t *testing.T) {
	f := &fleet{leftAt: map[string]time.Time{}, onBackup: map[string]time.Time{}, probeAt: map[string]time.Time{}}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.note(runtime.Transition{Line: "l", From: "primary_registered", To: "retrying", Event: "timer.budget", At: at.Add(1500 * time.Millisecond), FaultAt: at})
	f.note(runtime.Transition{Line: "l", From: "retrying", To: "backup_registered", Event: "resp.2xx", At: at.Add(1520 * time.Millisecond)})
	if len(f.failovers) != 1 || f.failovers[0] != 1520*time.Millisecond {
		t.Fatalf("failovers %v, want one of 1.52s", f.failovers)
	}
	// A line the user moved (no fault) is timed from the move.
	f.note(runtime.Transition{Line: "m", From: "primary_registered", To: "registering", Event: "user.register", At: at})
	f.note(runtime.Transition{Line: "m", From: "retrying", To: "backup_registered", Event: "resp.2xx", At: at.Add(time.Second)})
	if len(f.failovers) != 2 || f.failovers[1] != time.Second {
		t.Fatalf("failovers %v, want a second one of 1s", f.failovers)
	}
}
