package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/runtime/runtimetest"
)

func startRegistrars(t *testing.T, names ...string) []*runtimetest.Registrar {
	t.Helper()
	var out []*runtimetest.Registrar
	for _, n := range names {
		r := &runtimetest.Registrar{Name: n, User: "1001", Password: "pw"}
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Stop)
		out = append(out, r)
	}
	return out
}

func settingsFile(lines ...[2]int) string {
	var b strings.Builder
	b.WriteString("lines:\n")
	for i, l := range lines {
		fmt.Fprintf(&b, "  - name: line%d\n    user: \"1001\"\n    password: pw\n    t1: 20ms\n    servers:\n", i+1)
		for _, port := range l {
			fmt.Fprintf(&b, "      - {addr: 127.0.0.1, port: %d}\n", port)
		}
	}
	return b.String()
}

func registers(r *runtimetest.Registrar) (n, unregisters int) {
	for _, s := range r.Seen() {
		if s.Method == "REGISTER" {
			n++
			if s.Expires == 0 {
				unregisters++
			}
		}
	}
	return n, unregisters
}

// eventually waits on the wall clock (real sockets) for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestServeReloadAndStop: R15's "re-registers the affected line only", a
// bad reload keeps the running settings (R2), and stopping de-registers.
func TestServeReloadAndStop(t *testing.T) {
	rs := startRegistrars(t, "p1", "b1", "p2", "b2", "b2new")
	p1, b1, p2, b2, b2new := rs[0], rs[1], rs[2], rs[3], rs[4]
	path := filepath.Join(t.TempDir(), "lines.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(settingsFile([2]int{p1.Port(), b1.Port()}, [2]int{p2.Port(), b2.Port()}))
	ctx, cancel := context.WithCancel(context.Background())
	reload := make(chan struct{})
	done := make(chan error, 1)
	logs := &lockedWriter{w: &bytes.Buffer{}}
	log := slog.New(slog.NewTextHandler(logs, nil))
	go func() {
		done <- serve(ctx, serveOptions{config: path, statusAddr: "127.0.0.1:0", tokenFile: testToken(path)}, reload, log)
	}()
	eventually(t, "both lines register", func() bool { return p1.Registered() && p2.Registered() })
	n1, _ := registers(p1)

	write("lines: [this is not valid")
	reload <- struct{}{}
	eventually(t, "the bad reload is reported", func() bool { return strings.Contains(logs.String(), "reload refused") })
	write(settingsFile([2]int{p1.Port(), b1.Port()}, [2]int{p2.Port(), b2new.Port()}))
	reload <- struct{}{}
	// Line 2 de-registers (with the nonce it holds, RFC 7616 3.4: Expires 0
	// once) and registers anew.
	eventually(t, "line 2 re-registers", func() bool { n, u := registers(p2); return n >= 5 && u == 1 && p2.Registered() })
	if n, _ := registers(p1); n != n1 {
		t.Errorf("line 1 did not change but sent %d more REGISTERs", n-n1)
	}
	// The reload says what it did.
	if out := logs.String(); !strings.Contains(out, "settings applied") || !strings.Contains(out, "changed=1") || !strings.Contains(out, "changed_lines=[line2]") {
		t.Errorf("the reload's log lacks what changed:\n%s", out)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
	for _, r := range []*runtimetest.Registrar{p1, p2} {
		if r.Registered() {
			t.Errorf("%s still holds a binding after stop", r.Name)
		}
	}
	if b2.Registered() {
		t.Error("line 2's old backup was used after the reload moved it")
	}
}

// TestHalfBadSettingsChangeNothing: R2, a settings file with any problem
// changes nothing. One good line beside a bad one is not half applied: at
// start the agent refuses the file, naming the bad line, and registers
// nothing; on a reload the running lines stay as they were, the good
// line's change included.
func TestHalfBadSettingsChangeNothing(t *testing.T) {
	rs := startRegistrars(t, "p1", "b1", "p2", "b2", "b1new")
	p1, b1, p2, b2, b1new := rs[0], rs[1], rs[2], rs[3], rs[4]
	halfBad := func(line1 [2]int) string { // line 1 good, line 2 with T1 past its bound
		s := settingsFile(line1, [2]int{p2.Port(), b2.Port()})
		i := strings.LastIndex(s, "t1: 20ms")
		return s[:i] + "t1: 99h" + s[i+len("t1: 20ms"):]
	}
	path := filepath.Join(t.TempDir(), "lines.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	write(halfBad([2]int{p1.Port(), b1.Port()}))
	err := serve(context.Background(), serveOptions{config: path, statusAddr: "127.0.0.1:0", tokenFile: testToken(path)}, nil, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "t1") {
		t.Fatalf("a file with a bad line: %v, want it refused naming t1", err)
	}
	time.Sleep(100 * time.Millisecond) // a REGISTER on its way would arrive
	if n, _ := registers(p1); n != 0 {
		t.Fatalf("the good line of a refused file sent %d REGISTERs", n)
	}

	write(settingsFile([2]int{p1.Port(), b1.Port()}, [2]int{p2.Port(), b2.Port()}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reload := make(chan struct{})
	done := make(chan error, 1)
	logs := &lockedWriter{w: &bytes.Buffer{}}
	go func() {
		done <- serve(ctx, serveOptions{config: path, statusAddr: "127.0.0.1:0", tokenFile: testToken(path)}, reload, slog.New(slog.NewTextHandler(logs, nil)))
	}()
	eventually(t, "both lines register", func() bool { return p1.Registered() && p2.Registered() })
	n1, _ := registers(p1)
	n2, _ := registers(p2)
	write(halfBad([2]int{p1.Port(), b1new.Port()}))
	reload <- struct{}{}
	eventually(t, "the reload is refused", func() bool { return strings.Contains(logs.String(), "reload refused") })
	time.Sleep(100 * time.Millisecond)
	if n, _ := registers(p1); n != n1 {
		t.Errorf("line 1 sent %d more REGISTERs after a refused reload", n-n1)
	}
	if n, _ := registers(p2); n != n2 {
		t.Errorf("line 2 sent %d more REGISTERs after a refused reload", n-n2)
	}
	if len(b1new.Seen()) != 0 {
		t.Error("the refused file's new backup of line 1 was taken")
	}
	cancel()
	<-done
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.(*bytes.Buffer).String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// testToken is where a test's agent keeps its control token: beside its
// settings, in the test's own folder.
func testToken(settingsPath string) string {
	return filepath.Join(filepath.Dir(settingsPath), "control.token")
}

// runAgent writes settings to a file and runs the agent on them until the
// test ends; it returns the agent's status address and the file.
func runAgent(t *testing.T, settings string) (addr, path string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "lines.yaml")
	if err := os.WriteFile(path, []byte(settings), 0o600); err != nil {
		t.Fatal(err)
	}
	addr = freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, serveOptions{config: path, statusAddr: addr, tokenFile: testToken(path)}, nil, slog.New(slog.DiscardHandler))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})
	return addr, path
}

// TestStatusTable: `sipfailover status` prints each line of a running agent
// with its state, server and last failure (R14).
func TestStatusTable(t *testing.T) {
	rs := startRegistrars(t, "p", "b")
	rs[0].SetAnswer(503, 0)
	addr, _ := runAgent(t, settingsFile([2]int{rs[0].Port(), rs[1].Port()}))
	var out, errOut bytes.Buffer
	eventually(t, "the status shows the line on the backup", func() bool {
		out.Reset()
		return statusCmd([]string{"-addr", addr}, &out, &errOut) == 0 && strings.Contains(out.String(), "backup_registered")
	})
	table := strings.Split(strings.TrimSpace(out.String()), "\n")
	if !strings.Contains(table[0], "CALLS") {
		t.Errorf("status header %q lacks CALLS", table[0])
	}
	row := table[1]
	for _, want := range []string{"line1", "backup_registered", "2 UDP 127.0.0.1:" + strconv.Itoa(rs[1].Port()), "503 Service Unavailable"} {
		if !strings.Contains(row, want) {
			t.Errorf("status row %q lacks %q", row, want)
		}
	}
	out.Reset()
	if code := statusCmd([]string{"-addr", addr, "-json"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), `"state": "backup_registered"`) {
		t.Errorf("status -json exited %d:\n%s", code, out.String())
	}
}

// TestStatusNamesTheTarget: R20, with the settings' dns block pointing at
// a DNS server, a line whose primary is a domain name registers on its
// SRV target, and the status names the server, the target and the address.
func TestStatusNamesTheTarget(t *testing.T) {
	rs := startRegistrars(t, "p", "b")
	zone, err := runtimetest.NewZone(
		fmt.Sprintf("_sip._udp.example.test. 60 IN SRV 10 0 %d p1.example.test.", rs[0].Port()),
		"p1.example.test. 60 IN A 127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	dnsAddr, stop, err := zone.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	conf := fmt.Sprintf("dns:\n  servers: [%q]\nlines:\n  - name: line1\n    user: \"1001\"\n    password: pw\n    t1: 20ms\n"+
		"    servers:\n      - {addr: example.test, port: 0}\n      - {addr: 127.0.0.1, port: %d}\n", dnsAddr, rs[1].Port())
	addr, _ := runAgent(t, conf)
	var out, errOut bytes.Buffer
	eventually(t, "the status shows the line on the SRV target", func() bool {
		out.Reset()
		return statusCmd([]string{"-addr", addr}, &out, &errOut) == 0 && strings.Contains(out.String(), "primary_registered")
	})
	want := fmt.Sprintf("1 example.test via p1.example.test:%d at UDP 127.0.0.1:%d", rs[0].Port(), rs[0].Port())
	if !strings.Contains(out.String(), want) {
		t.Errorf("status\n%s\nlacks %q", out.String(), want)
	}
	out.Reset()
	if code := statusCmd([]string{"-addr", addr, "-json"}, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), fmt.Sprintf(`"target": "p1.example.test:%d"`, rs[0].Port())) ||
		!strings.Contains(out.String(), `"server_name": "example.test (SRV, UDP)"`) {
		t.Errorf("status -json exited %d:\n%s", code, out.String())
	}
}

// TestStopWithEveryServerStuck: item 6 of the hardening issue. With both
// servers TCP and hung (they accept and never read), stopping the agent
// (SIGTERM) still de-registers what it can and returns within its bound:
// 64*T1 + 1 s (2.28 s at T1 20 ms), where a write blocked before.
func TestStopWithEveryServerStuck(t *testing.T) {
	var ports []int
	var first *runtimetest.Deaf
	for range 2 {
		d, err := runtimetest.NewDeaf()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(d.Close)
		ports = append(ports, d.Port())
		first = cmp.Or(first, d)
	}
	path := filepath.Join(t.TempDir(), "lines.yaml")
	src := fmt.Sprintf("lines:\n  - user: \"1001\"\n    password: pw\n    t1: 20ms\n    servers:\n"+
		"      - {addr: 127.0.0.1, port: %d, transport: 1}\n      - {addr: 127.0.0.1, port: %d, transport: 1}\n", ports[0], ports[1])
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, serveOptions{config: path, statusAddr: "127.0.0.1:0", tokenFile: testToken(path)}, nil, slog.New(slog.DiscardHandler))
	}()
	eventually(t, "the line connects to a hung server", func() bool { return first.Accepted() > 0 })
	start := time.Now()
	cancel()
	const bound = 64*20*time.Millisecond + time.Second
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("stopped in %v (bound %v)", time.Since(start), bound)
	case <-time.After(bound + 10*time.Second): // generous: a loaded machine, but a wedge never returns
		t.Fatalf("the agent did not stop within %v", bound)
	}
}
