package verify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/gen"
	"github.com/sipfailover/sipfailover/internal/verify"
)

// tools skips a test without SPIN and a C compiler, and fails it in CI,
// which installs them (.ci/install-deps spin).
func tools(t *testing.T) {
	t.Helper()
	if err := verify.Tools(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// check writes the Promela of model src and checks property id of it.
func check(t *testing.T, name string, src []byte, id string) verify.Result {
	t.Helper()
	pml, err := gen.Promela("model/"+name+".yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name+".pml")
	if err := os.WriteFile(path, pml, 0o644); err != nil {
		t.Fatal(err)
	}
	props, err := verify.Properties(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range props {
		if p.ID == id {
			r, err := verify.Check(context.Background(), path, p, verify.Options{Timeout: 5 * time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d states, depth %d, %v, holds %v\n  %s", p, r.States, r.Depth, r.Time, r.Holds, strings.Join(r.Trail, "\n  "))
			return r
		}
	}
	t.Fatalf("%s has no property %s", name, id)
	return verify.Result{}
}

// TestCallModelHolds: the call model, small, checked in full: its
// assertions and its leads-to invariant hold.
func TestCallModelHolds(t *testing.T) {
	tools(t)
	src, err := os.ReadFile("../../model/call.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"safety", "I6"} {
		if r := check(t, "call", src, id); !r.Holds || r.States == 0 {
			t.Errorf("call/%s: holds %v after %d states", id, r.Holds, r.States)
		}
	}
}

// TestMutantsAreCaught: the line model with a bug planted, each caught by
// the property it breaks, with a counterexample that names it.
func TestMutantsAreCaught(t *testing.T) {
	if os.Getenv("SIPFAILOVER_DEEP") == "" {
		t.Skip("three model-checker runs of the line and three runtime builds: a deep check, run by .ci/run (SIPFAILOVER_DEEP=1)")
	}
	tools(t)
	line, err := os.ReadFile("../../model/line.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct {
		name  string
		edits [][2]string // replace the first with the second, each exactly once
		prop  string
		trail string // a line of the counterexample
	}{
		{
			name: "no failback: the probe's 2xx is ignored",
			edits: [][2]string{
				{"  - id: failback\n    from: probing\n    on: probe.2xx\n", "  - id: failback\n    from: probing\n    on: calls.ended\n"},
				{"    entry: [set probe_challenges = 0, set probe_retries = 0, send_probe]\n    ignore: [flow.alive, calls.ended, dns.refreshed, request.new, lookup.failed]",
					"    entry: [set probe_challenges = 0, set probe_retries = 0, send_probe]\n    ignore: [flow.alive, probe.2xx, dns.refreshed, request.new, lookup.failed]"},
			},
			prop:  "I1",
			trail: "(from here the run repeats forever)",
		},
		{
			name: "all-failed retries at once when a call fails, without the back-off",
			edits: [][2]string{
				{"      primary, or sooner when the flow keep-alive finds a server alive.\n    after: [backoff, flow]\n    ignore: [flow.lost, calls.ended, dns.refreshed, request.new, lookup.failed, resp.retry, transport.closed, resp.2xx, resp.challenge, resp.unavailable, resp.registrar_down, resp.rejected, transport.icmp, transport.tcp,\n      server.held_off, keepalive.failed, request.unavailable,",
					"      primary, or sooner when the flow keep-alive finds a server alive.\n    after: [backoff, flow]\n    ignore: [flow.lost, calls.ended, dns.refreshed, request.new, lookup.failed, resp.retry, transport.closed, resp.2xx, resp.challenge, resp.unavailable, resp.registrar_down, resp.rejected, transport.icmp, transport.tcp,\n      server.held_off, keepalive.failed,"},
				{"\ninvariants:\n", "  - id: retry_at_once\n    from: all_failed\n    on: request.unavailable\n    to: registering\n    doc: A bug.\n\ninvariants:\n"},
			},
			prop:  "safety",
			trail: "I9: all_failed|failed to registering only on timer.backoff|user.register|flow.alive",
		},
		{
			name: "two probes: another one when the last call ends",
			edits: [][2]string{
				{"    entry: [set probe_challenges = 0, set probe_retries = 0, send_probe]\n    ignore: [flow.alive, calls.ended, dns.refreshed, request.new, lookup.failed]",
					"    entry: [set probe_challenges = 0, set probe_retries = 0, send_probe]\n    ignore: [flow.alive, dns.refreshed, request.new, lookup.failed]"},
				{"\ninvariants:\n", "  - id: probe_again\n    from: probing\n    on: calls.ended\n    do: [send_probe]\n    doc: A bug.\n\ninvariants:\n"},
			},
			prop:  "safety",
			trail: "send_probe: a second request of probe while one is unanswered",
		},
	} {
		t.Run(m.name, func(t *testing.T) {
			src := string(line)
			for _, e := range m.edits {
				if strings.Count(src, e[0]) != 1 {
					t.Fatalf("the edit does not apply once to model/line.yaml: %q", e[0])
				}
				src = strings.Replace(src, e[0], e[1], 1)
			}
			r := check(t, "line", []byte(src), m.prop)
			if r.Holds {
				t.Fatalf("%s holds: the mutant was not caught", m.prop)
			}
			if !strings.Contains(strings.Join(r.Trail, "\n"), m.trail) {
				t.Errorf("the counterexample lacks %q:\n%s", m.trail, strings.Join(r.Trail, "\n"))
			}
			// The counterexample as a scenario: it passes on the runtime as
			// generated and fails, at the property, on the runtime built
			// from the mutant.
			script, err := verify.Scenario(r)
			if err != nil {
				t.Fatalf("no scenario: %v", err)
			}
			t.Logf("scenario:\n%s", script)
			code, err := gen.GoCode("model/line.yaml", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			replay(t, script, nil)
			out := replay(t, script, code)
			last := strings.Count(script, "\n")
			if !strings.Contains(out, fmt.Sprintf(".txt:%d: ", last)) {
				t.Errorf("the mutant's runtime did not fail at the property (line %d):\n%s", last, out)
			}
		})
	}
}

// replay runs a scenario script on the runtime, built with the line
// machine's generated code replaced by code when it is not nil; it
// requires the script to pass on the runtime as generated and to fail on
// a replaced one, and returns what go test printed.
func replay(t *testing.T, script string, code []byte) string {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "counterexample.txt")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"test", "-count=1", "-run", "^TestScenarioFile$"}
	if code != nil {
		gen, err := filepath.Abs("../../fsm/line_gen.go")
		if err != nil {
			t.Fatal(err)
		}
		mutant := filepath.Join(dir, "line_gen.go")
		overlay := filepath.Join(dir, "overlay.json")
		if err := os.WriteFile(mutant, code, 0o644); err != nil {
			t.Fatal(err)
		}
		js, _ := json.Marshal(map[string]map[string]string{"Replace": {gen: mutant}})
		if err := os.WriteFile(overlay, js, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-overlay", overlay)
	}
	args = append(args, "./runtime", "-args", "-scenario", file)
	cmd := exec.Command("go", args...)
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	switch {
	case code == nil && err != nil:
		t.Fatalf("the scenario fails on the runtime as generated: %v\n%s", err, out)
	case code != nil && err == nil:
		t.Fatalf("the scenario passes on the mutant's runtime:\n%s", out)
	}
	return string(out)
}
