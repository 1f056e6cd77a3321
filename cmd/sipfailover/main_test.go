package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCheckReportsPositionsAndExitCode(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	src := "machine: m\ndoc: d\nstates:\n  a:\n    initial: true\n    doc: x\n    ignore: [nope]\n"
	if err := os.WriteFile(bad, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"check", bad}, &out, &errOut); code != 1 {
		t.Fatalf("check of a bad model exited %d, want 1; stderr:\n%s", code, errOut.String())
	}
	if want := bad + ":7:14: unknown event \"nope\""; !strings.Contains(errOut.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, errOut.String())
	}
}

func TestCheckRealModels(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"check", "../../model/line.yaml", "../../model/request.yaml"}, &out, &errOut); code != 0 {
		t.Fatalf("check of the real models exited %d:\n%s", code, errOut.String())
	}
	if errOut.Len() != 0 {
		t.Errorf("the real models have warnings:\n%s", errOut.String())
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"frobnicate"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "unknown command") {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
}

// TestDemo runs the README's first command with short timers: every story
// must end on the right server with each measured time within its bound.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("real sockets and about three seconds of wall clock")
	}
	var out, errOut bytes.Buffer
	code := run([]string{"demo", "-t1", "20ms", "-keepalive", "100ms", "-failback-interval", "1"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("demo exited %d:\n%s\n%s", code, out.String(), errOut.String())
	}
	text := out.String()
	for _, want := range []string{"keepalive.failed   ICMP port unreachable", "no answer to OPTIONS", "503 Service Unavailable", "probe.2xx",
		"request.unavailable BYE: ICMP port unreachable", "its BYE came through the backup", "call confirmed      backup"} {
		if !strings.Contains(text, want) {
			t.Errorf("timeline lacks %q:\n%s", want, text)
		}
	}
	if n := strings.Count(text, " within bound "); n != 9 {
		t.Errorf("%d measurements within their bounds, want 9:\n%s", n, text)
	}
	// The README's excerpt of the timeline is what the demo prints, row for
	// row in that order, times, ports and timer values aside.
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, excerpt, _ := strings.Cut(string(readme), "It prints the timeline")
	_, excerpt, _ = strings.Cut(excerpt, "```\n")
	excerpt, _, _ = strings.Cut(excerpt, "measured (wall clock")
	numbers := regexp.MustCompile(`[0-9][0-9.]*(ms|µs|s)?`)
	norm := func(row string) string { return strings.Join(strings.Fields(numbers.ReplaceAllString(row, "#")), " ") }
	var printed []string
	for _, row := range strings.Split(text, "\n") {
		printed = append(printed, norm(row))
	}
	rows := 0
	for _, row := range strings.Split(strings.TrimSpace(excerpt), "\n") {
		if row = norm(row); row == "..." || strings.HasPrefix(row, "time state") {
			continue
		}
		i := slices.Index(printed, row)
		if i < 0 {
			t.Errorf("the README shows the demo printing %q, which it does not print (after the rows before it):\n%s", row, text)
			break
		}
		printed, rows = printed[i+1:], rows+1
	}
	if rows < 10 {
		t.Errorf("the README's excerpt of the demo has %d rows the test could read", rows)
	}
}

// TestDemoReportFailsOverBound: a measured time past its bound (and the
// slack a busy machine adds) fails the demo.
func TestDemoReportFailsOverBound(t *testing.T) {
	var out bytes.Buffer
	within := measure{"failover", 300 * time.Millisecond, 600 * time.Millisecond, "bound"}
	if err := report(&out, []measure{within}); err != nil {
		t.Fatalf("a time within its bound failed: %v", err)
	}
	over := measure{"failover", 800 * time.Millisecond, 600 * time.Millisecond, "bound"}
	if err := report(&out, []measure{within, over}); err == nil || !strings.Contains(out.String(), "OVER") {
		t.Fatalf("a time over its bound passed: %v\n%s", err, out.String())
	}
}

// TestEveryCommandHelps: -h on every command prints its usage on standard
// output and exits 0; a stray argument or a flag that cannot work is an
// error that says so, with exit 2.
func TestEveryCommandHelps(t *testing.T) {
	for _, cmd := range []string{"demo", "run", "status", "calls", "call", "hangup", "event", "fleet", "hash-password", "gen", "check", "lab", "verify-capture"} {
		var out, errOut bytes.Buffer
		if code := run([]string{cmd, "-h"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "usage: sipfailover "+cmd) {
			t.Errorf("%s -h: exit %d, stdout %q, stderr %q", cmd, code, out.String(), errOut.String())
		}
	}
	for _, args := range [][]string{
		{"status", "extra"}, {"run", "-config", "x.yaml", "extra"}, {"demo", "extra"}, {"call"}, {"call", "a", "b"},
		{"hash-password", "extra"}, {"demo", "-t1", "0"}, {"demo", "-failback-interval", "0"}, {"status", "-nonsense"},
	} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 2 || errOut.Len() == 0 {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a message", args, code, errOut.String())
		}
	}
}

// TestVersionWithoutVCS: a build without its VCS stamp says its commit is
// unknown, and a release version given with -ldflags is the one printed.
func TestVersionWithoutVCS(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/sipfailover/sipfailover", Version: "(devel)"}}
	if got := versionOf(info, true, ""); got != "sipfailover (devel) (unknown commit: built without version control information) go1.26.0" {
		t.Errorf("no VCS stamp: %q", got)
	}
	if got := versionOf(info, true, "v0.4.0"); !strings.HasPrefix(got, "sipfailover v0.4.0 (unknown commit") {
		t.Errorf("a release version: %q", got)
	}
	info.Settings = []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.time", Value: "2026-12-07T09:00:00Z"}}
	if got := versionOf(info, true, "v0.4.0"); got != "sipfailover v0.4.0 (commit 0123456789ab 2026-12-07T09:00:00Z) go1.26.0" {
		t.Errorf("with a commit: %q", got)
	}
}

// TestVersion: version prints the module's version and the Go version.
func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "-version"} {
		var out, errOut bytes.Buffer
		if code := run([]string{arg}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "sipfailover ") || !strings.Contains(out.String(), "go1.") {
			t.Errorf("%s: exit %d, %q", arg, code, out.String())
		}
	}
}

// TestAgentAddressFlag: status, call and hangup take the agent's address
// as run names it, -status-addr (and -addr, as before); with no agent
// there, they say where they looked and what to try.
func TestAgentAddressFlag(t *testing.T) {
	addr := freeAddr(t)
	for _, cmd := range [][]string{
		{"status", "-status-addr", addr},
		{"status", "-addr", addr},
		{"call", "-status-addr", addr, "-token-file", filepath.Join(t.TempDir(), "no.token"), "sip:1002@127.0.0.1"},
		{"hangup", "-status-addr", addr, "-token-file", filepath.Join(t.TempDir(), "no.token")},
	} {
		var out, errOut bytes.Buffer
		code := run(cmd, &out, &errOut)
		if code != 1 {
			t.Errorf("%q: exit %d, want 1: %s", cmd, code, errOut.String())
			continue
		}
		if cmd[0] != "status" {
			continue // no token file: refused before it asks the agent, saying so
		}
		if msg := errOut.String(); !strings.Contains(msg, "no agent answering at "+addr) || !strings.Contains(msg, "-status-addr") {
			t.Errorf("%q: %q, want where it looked and what to try", cmd, msg)
		}
	}
}

// TestEveryUsageIsComplete: each command's -h names every flag it takes in
// its usage lines (another name of a flag aside) and says what the command
// does.
func TestEveryUsageIsComplete(t *testing.T) {
	flagLine := regexp.MustCompile(`^  -(\S+)`)
	for _, cmd := range []string{"demo", "run", "status", "calls", "call", "hangup", "event", "fleet", "verify", "verify-capture", "hash-password", "gen", "check"} {
		var out, errOut bytes.Buffer
		if code := run([]string{cmd, "-h"}, &out, &errOut); code != 0 {
			t.Errorf("%s -h: exit %d: %s", cmd, code, errOut.String())
			continue
		}
		blocks := strings.SplitN(out.String(), "\n\n", 3)
		if len(blocks) < 2 || !strings.HasPrefix(blocks[0], "usage: sipfailover "+cmd) || strings.HasPrefix(blocks[1], "  -") || strings.TrimSpace(blocks[1]) == "" {
			t.Errorf("%s -h: no usage line and description:\n%s", cmd, out.String())
			continue
		}
		usage := blocks[0]
		lines := strings.Split(out.String(), "\n")
		for i, l := range lines {
			m := flagLine.FindStringSubmatch(l)
			if m == nil || i+1 < len(lines) && strings.Contains(lines[i+1], "the same as -") {
				continue
			}
			if !names(usage, m[1]) {
				t.Errorf("%s -h: the usage does not name -%s:\n%s", cmd, m[1], usage)
			}
		}
	}
}
