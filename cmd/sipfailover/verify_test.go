package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sipfailover/sipfailover/gen"
	"github.com/sipfailover/sipfailover/internal/verify"
)

// TestVerifyWritesScenario: a line model whose all-failed state retries at
// once when a call fails breaks I9; verify says so, exits 1, and writes the
// counterexample as a scenario script with the command that replays it.
func TestVerifyWritesScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the model checker")
	}
	if err := verify.Tools(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	src, err := os.ReadFile("../../model/line.yaml")
	if err != nil {
		t.Fatal(err)
	}
	mutant := strings.Replace(string(src), "\ninvariants:\n",
		"  - id: retry_at_once\n    from: all_failed\n    on: request.unavailable\n    to: registering\n    doc: A bug.\n\ninvariants:\n", 1)
	mutant = strings.Replace(mutant, "      primary.\n    after: [backoff]\n    ignore: [calls.ended, dns.refreshed, request.new, lookup.failed, resp.retry, transport.closed, resp.2xx, resp.challenge, resp.unavailable, resp.rejected, transport.icmp, transport.tcp,\n      server.held_off, keepalive.failed, request.unavailable,",
		"      primary.\n    after: [backoff]\n    ignore: [calls.ended, dns.refreshed, request.new, lookup.failed, resp.retry, transport.closed, resp.2xx, resp.challenge, resp.unavailable, resp.rejected, transport.icmp, transport.tcp,\n      server.held_off, keepalive.failed,", 1)
	pml, err := gen.Promela("model/line.yaml", []byte(mutant))
	if err != nil {
		t.Fatal(err)
	}
	dir, scenarios := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "line.pml"), pml, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"verify", "-dir", dir, "-model", "line", "-property", "safety", "-scenarios", scenarios}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, stdout.String(), stderr.String())
	}
	file := filepath.Join(scenarios, "line_safety.txt")
	for _, want := range []string{"line/safety", "VIOLATED", "all_failed --request.unavailable--> registering",
		"I9: all_failed|failed to registering only on timer.backoff|user.register",
		"replay on the runtime: go test ./runtime -run TestScenarioFile -args -scenario " + file} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the output lacks %q:\n%s", want, stdout.String())
		}
	}
	script, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(script), "request-unavailable\nadvance 1s\nexpect only all_failed|failed registering timer.backoff|user.register\n") {
		t.Errorf("the scenario does not end in the violation and the property:\n%s", script)
	}
}
