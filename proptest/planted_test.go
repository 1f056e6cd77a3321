package proptest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"pgregory.net/rapid"

	"github.com/sipfailover/sipfailover/gen"
	"github.com/sipfailover/sipfailover/internal/capture"
	"github.com/sipfailover/sipfailover/internal/invariant"
	"github.com/sipfailover/sipfailover/runtime/runtimetest"
	"github.com/sipfailover/sipfailover/runtime/transport"
)

// A planted bug rewrites what the line sends on its way to the network:
// the phone on the wire is then a broken phone, and both the run's trace
// and its capture see the broken one.
type planted struct {
	name string
	id   string // the invariant it breaks
	// tamper returns the sends to make instead of msg (a request of method,
	// in a dialog when toTag) to server i of eps.
	tamper func(eps []transport.Endpoint, i int, method string, cseq uint32, toTag bool, msg []byte) []runtimetest.SimSend
}

// sentToRE finds the server a request went to in an I4, I5 or I10 of the
// trace ("... went to server 2 ...", "... to server 2 ...").
var sentToRE = regexp.MustCompile(`(?:went )?to server (\d+)`)

// elsewhere is msg sent to the server after i instead.
func elsewhere(eps []transport.Endpoint, i int, msg []byte) []runtimetest.SimSend {
	return []runtimetest.SimSend{{Dst: eps[(i+1)%len(eps)], Msg: msg}}
}

var plantedBugs = []planted{
	{"every REGISTER transmission sent twice", "I4", func(eps []transport.Endpoint, i int, method string, _ uint32, _ bool, msg []byte) []runtimetest.SimSend {
		if method != "REGISTER" {
			return []runtimetest.SimSend{{Dst: eps[i], Msg: msg}}
		}
		return []runtimetest.SimSend{{Dst: eps[i], Msg: msg}, {Dst: eps[i], Msg: msg}}
	}},
	{"a new call's INVITE to the next server", "I5", func(eps []transport.Endpoint, i int, method string, _ uint32, toTag bool, msg []byte) []runtimetest.SimSend {
		if method == "INVITE" && !toTag {
			return elsewhere(eps, i, msg)
		}
		return []runtimetest.SimSend{{Dst: eps[i], Msg: msg}}
	}},
	{"a hang-up's BYE to the next server", "I10", func(eps []transport.Endpoint, i int, method string, _ uint32, _ bool, msg []byte) []runtimetest.SimSend {
		if method == "BYE" {
			return elsewhere(eps, i, msg)
		}
		return []runtimetest.SimSend{{Dst: eps[i], Msg: msg}}
	}},
	{"every INVITE transmission sent twice", "I4", func(eps []transport.Endpoint, i int, method string, _ uint32, _ bool, msg []byte) []runtimetest.SimSend {
		if method != "INVITE" {
			return []runtimetest.SimSend{{Dst: eps[i], Msg: msg}}
		}
		return []runtimetest.SimSend{{Dst: eps[i], Msg: msg}, {Dst: eps[i], Msg: msg}}
	}},
	{"a MESSAGE to the next server", "I5", func(eps []transport.Endpoint, i int, method string, _ uint32, _ bool, msg []byte) []runtimetest.SimSend {
		if method == "MESSAGE" {
			return elsewhere(eps, i, msg)
		}
		return []runtimetest.SimSend{{Dst: eps[i], Msg: msg}}
	}},
}

// TestWireCatchesPlantedBugs is the oracle's reverse: with a bug planted
// in the phone, verify-capture finds broken nine in ten of the runs the
// trace finds broken (in an invariant the wire decides), and the bug's own
// invariant in eight in ten of the runs the trace finds it in.
func TestWireCatchesPlantedBugs(t *testing.T) {
	if testing.Short() {
		t.Skip("five hundred runs of the runtime")
	}
	bugs := plantedBugs
	if id, name, ok := strings.Cut(os.Getenv(modelBugEnv), " "); ok {
		// Built from a model with a bug planted (TestWireCatchesModelBugs):
		// the phone sends what its broken machine tells it to.
		bugs = []planted{{name, id, func(eps []transport.Endpoint, i int, _ string, _ uint32, _ bool, msg []byte) []runtimetest.SimSend {
			return []runtimetest.SimSend{{Dst: eps[i], Msg: msg}}
		}}}
	}
	for _, bug := range bugs {
		t.Run(bug.name, func(t *testing.T) {
			var stats struct {
				broken, caught     int    // runs the trace finds broken, and of those the capture too
				inside, wire, both int    // runs the bug's own invariant broke in the trace, on the wire, in both
				missed             string // the first run the capture passed
			}
			rapid.Check(t, func(t *rapid.T) {
				w := newWireWorld(t, "successive")
				w.net.Tamper = func(dst transport.Endpoint, msg []byte) []runtimetest.SimSend {
					i := slices.IndexFunc(w.eps, func(e transport.Endpoint) bool {
						return e.Host == dst.Host && e.Port == dst.Port && e.Transport == dst.Transport
					})
					parsed, err := sip.ParseMessage(msg)
					req, ok := parsed.(*sip.Request)
					if i < 0 || err != nil || !ok {
						return []runtimetest.SimSend{{Dst: dst, Msg: msg}}
					}
					var cseq uint32
					if h := req.CSeq(); h != nil {
						cseq = h.SeqNo
					}
					toTag := false
					if to := req.To(); to != nil {
						_, toTag = to.Params.Get("tag")
					}
					return bug.tamper(w.eps, i, string(req.Method), cseq, toTag, msg)
				}
				pcap := w.runOnWire(t, false) // the bug breaks invariants: judged at the end
				w.collect()
				// As strict as the trace: the slack a test engineer leaves for
				// a phone's own pace is a round trip here.
				settings := w.wireSettings()
				settings.Slack = w.trace.RTT
				a, err := capture.Analyze(bytes.NewReader(pcap), settings)
				if err != nil {
					t.Fatalf("the run's capture: %v", err)
				}
				wire := map[string]capture.Verdict{}
				for _, v := range a.Check() {
					wire[v.ID] = v
				}
				// When the phone put a SIP request on the wire: a request
				// over a TCP connection the server refused never got there
				// (the capture shows a refused SYN, not what it would have
				// carried), so an I4, I5 or I10 of it is not the wire's to see.
				type sent struct {
					server int
					at     time.Duration
				}
				onWire := map[sent]bool{}
				for _, l := range a.Lines {
					for _, x := range l.Txns {
						for _, m := range x.Sends {
							if x.Method != "SYN" {
								onWire[sent{x.Server, m.At.Sub(a.Begin)}] = true
							}
						}
					}
				}
				inside := slices.DeleteFunc(invariant.Check(&w.trace), func(v invariant.Violation) bool {
					switch {
					case wire[v.ID].Status == capture.Undecidable: // I6, I9, I12: not the wire's to decide
						return true
					case v.ID == "I4" || v.ID == "I5" || v.ID == "I10":
						m := sentToRE.FindStringSubmatch(v.Msg)
						if m == nil {
							return false
						}
						server, _ := strconv.Atoi(m[1])
						return !onWire[sent{server, v.At}]
					}
					return false
				})
				wireBroken := slices.ContainsFunc(a.Check(), func(v capture.Verdict) bool { return v.Status == capture.Violated })
				if len(inside) > 0 {
					stats.broken++
					if wireBroken {
						stats.caught++
					} else if stats.missed == "" {
						var b strings.Builder
						for _, v := range inside {
							fmt.Fprintf(&b, "  %s (on the wire: %s, %s)\n", v, wire[v.ID].Status, wire[v.ID].Why)
						}
						stats.missed = fmt.Sprintf("%s\n%s\nthe run as a scenario:\n\n%s\n", b.String(), w.describe(a, inside[0].At), strings.Join(w.script, "\n"))
					}
				}
				if slices.ContainsFunc(inside, func(v invariant.Violation) bool { return v.ID == bug.id }) {
					stats.inside++
					if wire[bug.id].Status == capture.Violated {
						stats.both++
					}
				}
				if wire[bug.id].Status == capture.Violated {
					stats.wire++
				}
			})
			t.Logf("%s: broken in the trace in %d runs, on the wire too in %d; %s in the trace in %d, on the wire in %d, in both in %d",
				bug.name, stats.broken, stats.caught, bug.id, stats.inside, stats.wire, stats.both)
			// Nine in ten: the wire reads some promises as the requirements
			// word them, and the trace holds the runtime to its own stricter
			// rule (a BYE elsewhere while the dialog's server had just failed
			// a request is allowed by "unless that server is unavailable").
			if stats.caught*10 < stats.broken*9 {
				t.Errorf("the capture passed %d of %d runs the trace finds broken; the first:\n%s", stats.broken-stats.caught, stats.broken, stats.missed)
			}
			if stats.inside == 0 || stats.both*10 < stats.inside*8 {
				t.Errorf("%s: %s on the wire in %d of the %d runs the trace finds it broken", bug.name, bug.id, stats.both, stats.inside)
			}
		})
	}
}

// modelBugEnv names, in a runtime built from a broken line model, the
// invariant the bug breaks and the bug: "I2 late failover".
const modelBugEnv = "SIPFAILOVER_MODEL_BUG"

// modelBugs are bugs planted in the line model itself, so in the runtime's
// decisions: its trace shows them as transitions, where a bug of what the
// line sends (plantedBugs) shows only in the requests.
var modelBugs = []struct {
	name, id string
	edits    [][2]string // replace the first with the second, each exactly once
}{
	{"late failover: a server's budget timer at three times the budget", "I2", [][2]string{
		{"  budget:\n    duration: budget\n", "  budget:\n    duration: 3 * budget\n"},
	}},
	{"skipped primary: every round begins at the backup", "I3", [][2]string{
		{"    entry: [set server = 0, set registrar = 0, set challenges = 0, set retries = 0, locate, send_register]",
			"    entry: [set server = 1, set registrar = 0, set challenges = 0, set retries = 0, locate, send_register]"},
	}},
}

// TestWireCatchesModelBugs is TestWireCatchesPlantedBugs with the bug in
// the model: for each, the line's machine is generated from the broken
// model, the runtime built with it in place of fsm/line_gen.go, and the
// oracle's reverse run there.
func TestWireCatchesModelBugs(t *testing.T) {
	if os.Getenv("SIPFAILOVER_DEEP") == "" {
		t.Skip("builds the runtime once for each bug: a deep check, run by .ci/run (SIPFAILOVER_DEEP=1)")
	}
	line, err := os.ReadFile("../model/line.yaml")
	if err != nil {
		t.Fatal(err)
	}
	generated, err := filepath.Abs("../fsm/line_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, bug := range modelBugs {
		t.Run(bug.name, func(t *testing.T) {
			src := string(line)
			for _, e := range bug.edits {
				if strings.Count(src, e[0]) != 1 {
					t.Fatalf("the edit does not apply once to model/line.yaml: %q", e[0])
				}
				src = strings.Replace(src, e[0], e[1], 1)
			}
			code, err := gen.GoCode("model/line.yaml", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			broken, overlay := filepath.Join(dir, "line_gen.go"), filepath.Join(dir, "overlay.json")
			js, _ := json.Marshal(map[string]map[string]string{"Replace": {generated: broken}})
			if err := os.WriteFile(broken, code, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(overlay, js, 0o644); err != nil {
				t.Fatal(err)
			}
			// The proportions TestWireCatchesPlantedBugs holds the capture
			// to are met only when the trace found the bug's invariant.
			// A thousand runs: the wire cannot see every late failover (one
			// whose cause was a request the capture shows no answer to, one at
			// the capture's end), and at a few hundred the share it sees
			// varies by several in a hundred from seed to seed.
			cmd := exec.Command("go", "test", "-count=1", "-overlay", overlay, "-run", "^TestWireCatchesPlantedBugs$", "-v", ".", "-rapid.checks=1000")
			cmd.Env = append(os.Environ(), modelBugEnv+"="+bug.id+" "+bug.name)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			t.Logf("%s", regexp.MustCompile(`(?m)^.*broken in the trace in.*$`).Find(out))
		})
	}
}
