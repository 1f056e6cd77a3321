//go:build interop

package interop

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/internal/capture"
)

// A fault of the primary as the servers give it, and its recovery.
type fault struct {
	name          string
	fail, recover func(w *world)
	bound         time.Duration // until the line is on the backup
	causeOverTCP  bool          // the capture shows what the line found over TCP too (a refused connection hides its request)
}

var faults = []fault{
	{"killed", func(w *world) { w.kam("kill", "primary") }, func(w *world) { w.kam(w.start("primary")...) }, 10 * time.Second, false},
	{"frozen", func(w *world) { w.kam("freeze", "primary") }, func(w *world) { w.kam("resume", "primary") }, 10 * time.Second, true},
	{"503", func(w *world) { w.kam("unavailable", "primary", "on") }, func(w *world) { w.kam("unavailable", "primary", "off") }, 10 * time.Second, true},
}

// agentMove is a state change the agent logged: when, to what, on which
// server (1 and up).
type agentMove struct {
	at     time.Time
	to     string
	server int
}

// moves reads the line's state changes from the agent's JSON log.
func (w *world) moves() []agentMove {
	w.t.Helper()
	f, err := os.Open(filepath.Join(w.dir, "agent.log"))
	if err != nil {
		w.t.Fatal(err)
	}
	defer f.Close()
	var out []agentMove
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e struct {
			Time   time.Time `json:"time"`
			Msg    string    `json:"msg"`
			To     string    `json:"to"`
			Server int       `json:"server"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Msg == "line transition" {
			out = append(out, agentMove{e.Time, e.To, e.Server})
		}
	}
	return out
}

// TestCaptureAgreesWithTheAgent is verify-capture's oracle against real
// servers: 16 drawn runs of the program against the Kamailio pair, over UDP
// and TCP, each with a call through the primary, a fault of the primary
// (killed, frozen, answering 503) with the call up or already ended,
// sometimes a call through the backup, and the primary's recovery, all
// captured by tcpdump from before the program starts. The program is
// correct (the property suite holds it to every invariant), so every
// violation the capture reports is a false accusation; and where the
// agent logged that it registered, on which server, the capture shows a
// live binding there. INTEROP_SEED replays a run's draws.
func TestCaptureAgreesWithTheAgent(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("INTEROP_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("INTEROP_SEED: %v", err)
		}
	}
	t.Logf("draws from seed %d (INTEROP_SEED=%d replays them)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	const runs = 16
	for i := range runs {
		transport := i % 2
		f := faults[rng.IntN(len(faults))]
		hangUpFirst, backupCall := rng.IntN(2) == 0, rng.IntN(2) == 0
		name := fmt.Sprintf("%02d/%s/primary_%s/call_%s", i, []string{"udp", "tcp"}[transport], f.name,
			map[bool]string{true: "ended_before", false: "up_during"}[hangUpFirst])
		if backupCall {
			name += "/backup_call"
		}
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "run.pcap")
			var stop func()
			w := newWorldWith(t, &world{transport: transport, keepalive: keepalive, beforeStart: func(w *world) {
				stop = tcpdump(t, file, w.ports["primary"], w.ports["backup"])
			}})
			c, _ := w.call("confirmed", 5*time.Second)
			if hangUpFirst {
				w.hangup(c.ID, 5*time.Second)
			}
			f.fail(w)
			w.waitState("backup_registered", f.bound)
			if !hangUpFirst {
				w.hangup(c.ID, 15*time.Second)
			}
			if backupCall {
				c, _ := w.call("confirmed", 5*time.Second)
				w.hangup(c.ID, 5*time.Second)
			}
			f.recover(w)
			w.waitState("primary_registered", failback+64*t1+5*time.Second)
			time.Sleep(time.Second) // the failback's de-registration and a keep-alive on the wire
			stop()

			a := analyze(t, file, w.agentCaptureSettings())
			r := a.Report("run.pcap")
			for _, v := range r.Verdicts {
				if v.Status == capture.Violated {
					t.Errorf("%s violated: %+v", v.ID, v.Findings)
				}
			}
			for _, id := range []string{"I1", "I3", "I4", "I5", "I7", "I10", "I11"} {
				if v := verdictOf(r, id); v.Status != capture.Held {
					t.Errorf("%s: %s (%s), want held", id, v.Status, v.Why)
				}
			}
			if v := verdictOf(r, "I2"); v.Status != capture.Held && (transport == 0 || f.causeOverTCP) {
				t.Errorf("I2: %s (%s), want held: the capture shows the primary %s", v.Status, v.Why, f.name)
			}
			// Where the agent says it registered, the capture shows it
			// registered: a binding on that server, granted by when the
			// agent logged the move (the 2xx is on the wire first).
			var line *capture.LineTrace
			for _, l := range a.Lines {
				if l.AOR == "1001@interop.test" {
					line = l
				}
			}
			if line == nil {
				t.Fatalf("the capture shows no line 1001@interop.test")
			}
			registered := 0
			for _, m := range w.moves() {
				if m.to != "primary_registered" && m.to != "backup_registered" {
					continue
				}
				registered++
				found := false
				for _, b := range line.Bindings {
					if b.Server == m.server-1 && !b.From.After(m.at.Add(slack)) && b.Until.After(m.at) {
						found = true
					}
				}
				if !found {
					t.Errorf("the agent registered on server %d at %v; the capture shows no binding there then", m.server, m.at.Format("15:04:05.000"))
				}
			}
			if registered < 3 {
				t.Errorf("the agent logged %d registrations, want the primary, the backup and the primary again", registered)
			}
			var held []string
			for _, v := range r.Verdicts {
				if v.Status == capture.Held {
					held = append(held, v.ID)
				}
			}
			t.Logf("%d frames over %v, %d registrations the agent logged; held: %v", r.Frames, r.Duration.Round(time.Millisecond), registered, held)
			if t.Failed() {
				js, _ := json.MarshalIndent(r.Verdicts, "", "  ")
				t.Logf("%d frames over %v; problems %v\n%s", r.Frames, r.Duration, r.Problems, js)
			}
		})
	}
}
