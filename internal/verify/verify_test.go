package verify_test

import (
	"context"
	"os"
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
	if testing.Short() {
		t.Skip("three model-checker runs of the line")
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
				{"    entry: [set probe_challenges = 0, set probe_retries = 0, send_probe]\n    ignore: [calls.ended, dns.refreshed, request.new, lookup.failed]",
					"    entry: [set probe_challenges = 0, set probe_retries = 0, send_probe]\n    ignore: [probe.2xx, dns.refreshed, request.new, lookup.failed]"},
			},
			prop:  "I1",
			trail: "(from here the run repeats forever)",
		},
		{
			name: "all-failed retries at once when a call fails, without the back-off",
			edits: [][2]string{
				{"      primary.\n    after: [backoff]\n    ignore: [calls.ended, dns.refreshed, request.new, lookup.failed, resp.retry, transport.closed, resp.2xx, resp.challenge, resp.unavailable, resp.rejected, transport.icmp, transport.tcp,\n      server.held_off, keepalive.failed, request.unavailable,",
					"      primary.\n    after: [backoff]\n    ignore: [calls.ended, dns.refreshed, request.new, lookup.failed, resp.retry, transport.closed, resp.2xx, resp.challenge, resp.unavailable, resp.rejected, transport.icmp, transport.tcp,\n      server.held_off, keepalive.failed,"},
				{"\ninvariants:\n", "  - id: retry_at_once\n    from: all_failed\n    on: request.unavailable\n    to: registering\n    doc: A bug.\n\ninvariants:\n"},
			},
			prop:  "safety",
			trail: "I9: all_failed|failed to registering only on timer.backoff|user.register",
		},
		{
			name: "two probes: another one when the records are looked up again",
			edits: [][2]string{
				{"    entry: [set probe_challenges = 0, set probe_retries = 0, send_probe]\n    ignore: [calls.ended, dns.refreshed, request.new, lookup.failed]",
					"    entry: [set probe_challenges = 0, set probe_retries = 0, send_probe]\n    ignore: [calls.ended, request.new, lookup.failed]"},
				{"\ninvariants:\n", "  - id: probe_again\n    from: probing\n    on: dns.refreshed\n    do: [send_probe]\n    doc: A bug.\n\ninvariants:\n"},
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
		})
	}
}
