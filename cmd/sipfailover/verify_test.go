package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sipfailover/sipfailover/internal/verify"
)

// TestVerifyWritesScenario: a line model whose all-failed state retries at
// once when a call fails breaks I9; verify says so, exits 1, and writes the
// counterexample as a scenario script with the command that replays it.
func TestVerifyWritesScenario(t *testing.T) {
	needChecker(t)
	src, err := os.ReadFile("../../model/line.yaml")
	if err != nil {
		t.Fatal(err)
	}
	mutant := strings.Replace(string(src), "\ninvariants:\n",
		"  - id: retry_at_once\n    from: all_failed\n    on: request.unavailable\n    to: registering\n    doc: A bug.\n\ninvariants:\n", 1)
	mutant = strings.Replace(mutant, "      primary, or sooner when the flow keep-alive finds a server alive.\n    after: [backoff, flow]\n    ignore: [flow.lost, calls.ended, dns.refreshed, request.new, lookup.failed, resp.retry, transport.closed, resp.2xx, resp.challenge, resp.unavailable, resp.registrar_down, resp.rejected, transport.icmp, transport.tcp,\n      server.held_off, keepalive.failed, request.unavailable,",
		"      primary, or sooner when the flow keep-alive finds a server alive.\n    after: [backoff, flow]\n    ignore: [flow.lost, calls.ended, dns.refreshed, request.new, lookup.failed, resp.retry, transport.closed, resp.2xx, resp.challenge, resp.unavailable, resp.registrar_down, resp.rejected, transport.icmp, transport.tcp,\n      server.held_off, keepalive.failed,", 1)
	// The mutant is only on disk as a model, as after an edit that was not
	// regenerated: verify must check it, not the committed verify/line.pml.
	dir, scenarios := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "line.yaml"), []byte(mutant), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"verify", "-models", dir, "-model", "line", "-property", "safety", "-scenarios", scenarios}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, stdout.String(), stderr.String())
	}
	file := filepath.Join(scenarios, "line_safety.txt")
	for _, want := range []string{"line/safety", "VIOLATED", "all_failed --request.unavailable--> registering",
		"I9: all_failed|failed to registering only on timer.backoff|user.register|flow.alive",
		"replay on the runtime: go test ./runtime -run TestScenarioFile -args -scenario " + file} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the output lacks %q:\n%s", want, stdout.String())
		}
	}
	script, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(script), "request-unavailable\nadvance 1s\nexpect only all_failed|failed registering timer.backoff|user.register|flow.alive\n") {
		t.Errorf("the scenario does not end in the violation and the property:\n%s", script)
	}
}

// TestVerifyRefusesBrokenModel: a model that does not compile (a typo in a
// state's name) is refused with exit 2 and the place of the error, before
// anything is checked; so is a folder without models and a bad flag.
func TestVerifyRefusesBrokenModel(t *testing.T) {
	needTools(t)
	src, err := os.ReadFile("../../model/line.yaml")
	if err != nil {
		t.Fatal(err)
	}
	typo := strings.Replace(string(src), "to: backup_registered", "to: backup_registerd", 1)
	if typo == string(src) {
		t.Fatal("the model has no transition to backup_registered to misspell")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "line.yaml"), []byte(typo), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"verify", "-models", dir, "-model", "line", "-property", "safety"}, "line.yaml:"},
		{[]string{"verify", "-models", t.TempDir()}, "has no *.yaml"},
		{[]string{"verify", "-dir", "verify"}, "-dir"},
		{[]string{"verify", "-jobs", "0"}, "-jobs 0: 1 to 64"},
		{[]string{"verify", "-jobs", "65"}, "-jobs 65: 1 to 64"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(c.args, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s%s", c.args, code, stdout.String(), stderr.String())
		}
		if !strings.Contains(stderr.String(), c.want) || strings.Contains(stdout.String(), "holds") {
			t.Errorf("%v: stderr lacks %q, or something was checked:\n%s%s", c.args, c.want, stdout.String(), stderr.String())
		}
	}
}

// TestVerifyInOrder: properties checked side by side are reported in the
// order of the models and their properties, whatever order they finish in.
func TestVerifyInOrder(t *testing.T) {
	needChecker(t)
	dir := t.TempDir()
	for _, m := range []string{"binding", "call", "concurrent"} {
		src, err := os.ReadFile("../../model/" + m + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, m+".yaml"), src, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"verify", "-models", dir, "-jobs", "3"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		got = append(got, strings.Fields(l)[0])
	}
	want := []string{"binding/safety", "binding/B1", "call/safety", "call/I6", "concurrent/safety"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("reported %v, want %v", got, want)
	}
}

// needChecker skips t in short mode, and is needTools.
func needChecker(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the model checker")
	}
	needTools(t)
}

// needTools skips t where SPIN or a C compiler is missing, and fails it
// in CI, which installs them.
func needTools(t *testing.T) {
	t.Helper()
	if err := verify.Tools(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}
