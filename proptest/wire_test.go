package proptest

import (
	"bytes"
	"fmt"
	"math"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/sipfailover/sipfailover/internal/capture"
	"github.com/sipfailover/sipfailover/internal/invariant"
)

// wireSettings are the line's settings as verify-capture takes them: what
// a test engineer who knows the phone's settings passes on the command line.
func (w *world) wireSettings() capture.Settings {
	s := w.trace.Settings
	c := capture.DefaultSettings()
	for _, e := range w.eps {
		c.Servers = append(c.Servers, netip.AddrPortFrom(netip.MustParseAddr(e.Host), uint16(e.Port)))
	}
	c.T1, c.T2, c.CountMode, c.RetryCounts, c.RetryTime = s.T1, s.T2, s.CountMode, s.RetryCounts, s.RetryTime
	c.InviteRetryCounts = s.InviteRetryCounts
	c.FailbackEnabled, c.FailbackInterval, c.FailbackMode, c.FailbackWhenIdle = s.FailbackEnabled, s.FailbackInterval, s.FailbackMode, s.FailbackWhenIdle
	c.Keepalive, c.BackoffBase, c.BackoffMax, c.TimerSpread = s.Keepalive, s.BackoffBase, s.BackoffMax, s.TimerSpread
	c.FromBoot, c.Concurrent = true, w.concurrent
	c.Shared, c.SignalUnregistered = s.Shared, s.SignalUnregistered
	c.Registrars = w.registrars
	return c
}

// rttOffset keeps the oracle's round trips off whole milliseconds.
const rttOffset = 37 * time.Microsecond

// TestWireAgreesWithTrace is verify-capture's oracle: one run of the real
// runtime, judged from inside (its transitions and what each simulated
// server received, by invariant.Check) and from the wire (the run's packet
// capture, by verify-capture's checks with the line's settings). The trace
// check holds after every step, so the runtime is correct on this run: any
// invariant the capture reports violated is a false accusation.
//
// WIRE_PCAP=FILE writes a failing run's capture there, WIRE_ALL=1 prints
// all of the run rather than the time around the first finding.
func TestWireAgreesWithTrace(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := newWireWorld(t, "successive")
		w.wireAgrees(t, w.runOnWire(t, true))
	})
}

// TestWireAgreesWithTraceConcurrent is the oracle with the line in
// concurrent registration mode (R17), judged from inside by
// invariant.CheckConcurrent.
func TestWireAgreesWithTraceConcurrent(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := newWireWorld(t, "concurrent")
		w.wireAgrees(t, w.runOnWire(t, true))
	})
}

// newWireWorld is a world for the oracles, its round trips a fraction of a
// millisecond off the whole: in virtual time an answer would otherwise
// often reach the line at the very instant its budget ends, an order the
// wire cannot see and a real network all but never gives.
func newWireWorld(t *rapid.T, regMode string) *world {
	w := newWorldIn(t, coverage{}, regMode)
	w.net.RTT += rttOffset
	w.trace.RTT += rttOffset
	return w
}

// runOnWire registers the line, walks it at random and returns the run's
// capture; the trace is checked after every step when judged (a correct
// runtime), else only by the caller at the end (a bug planted). The user
// registering again or unregistering at random moments is left out: such
// a REGISTER to the primary from a backup looks on the wire exactly like a
// probe, and the capture's verdicts would rest on a guess (docs/capture.md
// says what the wire cannot tell). So are the user's steps that a change to
// the model adds (userActions): whatever they send, the wire cannot tell that
// the user asked for it.
func (w *world) runOnWire(t *rapid.T, judged bool) []byte {
	var pcap bytes.Buffer
	tap, err := w.net.CaptureTo(&pcap)
	if err != nil {
		t.Fatal(err)
	}
	w.do("register")
	w.line.Register()
	w.trace.Users = append(w.trace.Users, 0)
	actions := runtimeActions(w)
	delete(actions, "user registers")
	delete(actions, "user unregisters")
	for name := range userActions {
		delete(actions, name)
	}
	switch {
	case !judged:
		actions[""] = func(*rapid.T) {}
	case w.concurrent:
		actions[""] = w.checkConcurrent
	}
	t.Repeat(actions)
	if err := tap.Err(); err != nil {
		t.Fatal(err)
	}
	return pcap.Bytes()
}

// wireAgrees fails t when the capture of the run shows a violation that
// the run's own trace does not.
func (w *world) wireAgrees(t *rapid.T, pcap []byte) {
	w.collect()
	inside := map[string]bool{}
	check := invariant.Check
	if w.concurrent {
		check = invariant.CheckConcurrent
	}
	for _, v := range check(&w.trace) {
		inside[v.ID] = true
	}
	a, err := capture.Analyze(bytes.NewReader(pcap), w.wireSettings())
	if err != nil {
		t.Fatalf("the run's capture: %v", err)
	}
	// When each frame was seen, to show the run around a finding's first.
	frameAt := map[int]time.Duration{}
	for _, l := range a.Lines {
		for _, x := range l.Txns {
			for _, m := range append(append([]*capture.Message(nil), x.Sends...), x.Answers...) {
				frameAt[m.Frame] = m.At.Sub(a.Begin)
			}
			if x.Fault != nil {
				frameAt[x.Fault.Frame] = x.Fault.At.Sub(a.Begin)
			}
		}
	}
	var wrong []string
	first := time.Duration(math.MaxInt64)
	for _, v := range a.Check() {
		if v.Status == capture.Violated && !inside[v.ID] {
			for _, f := range v.Findings {
				first = min(first, f.At)
				for _, fr := range f.Frames {
					if at, ok := frameAt[fr]; ok {
						first = min(first, at+25*time.Second)
					}
				}
				wrong = append(wrong, fmt.Sprintf("  %s at %v: %s (frames %v)", v.ID, f.At, f.Msg, f.Frames))
			}
		}
	}
	if len(wrong) == 0 {
		return
	}
	if path := os.Getenv("WIRE_PCAP"); path != "" { // to read the failing run's capture with other tools
		os.WriteFile(path, pcap, 0o644)
	}
	slices.Sort(wrong)
	t.Fatalf("the capture shows violations the run's trace does not:\n%s\n\nthe report:\n%s\nthe run as a scenario:\n\n%s\n",
		strings.Join(wrong, "\n"), w.describe(a, first), strings.Join(w.script, "\n"))
}

// describe is the capture's report, and what it and the trace show of the
// run from 30 s before first to 5 s after it (WIRE_ALL=1: all of it).
func (w *world) describe(a *capture.Analysis, first time.Duration) string {
	var b strings.Builder
	a.Report("run.pcap").Write(&b)
	fmt.Fprintf(&b, "\nthe transactions the capture shows in the 30 s up to the first finding, and 5 s after:\n")
	for _, l := range a.Lines {
		for _, x := range l.Txns {
			if at := x.Sends[0].At.Sub(a.Begin); (at < first-30*time.Second || at > first+5*time.Second) && os.Getenv("WIRE_ALL") == "" {
				continue
			}
			fmt.Fprintf(&b, "  %s server %d %s %s cseq %d call %s:", l.AOR, x.Server+1, x.Method, x.Branch, x.CSeq, x.CallID)
			for _, m := range x.Sends {
				fmt.Fprintf(&b, " sent %v (frame %d)", m.At.Sub(a.Begin), m.Frame)
			}
			for _, m := range x.Answers {
				fmt.Fprintf(&b, " answered %d at %v (frame %d)", m.Code, m.At.Sub(a.Begin), m.Frame)
			}
			if x.Fault != nil {
				fmt.Fprintf(&b, " %s at %v (frame %d)", x.Fault.What, x.Fault.At.Sub(a.Begin), x.Fault.Frame)
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("the bindings the capture shows in that time:\n")
	for _, l := range a.Lines {
		for _, x := range l.Bindings {
			if (x.Until.Sub(a.Begin) < first-30*time.Second || x.From.Sub(a.Begin) > first+5*time.Second) && os.Getenv("WIRE_ALL") == "" {
				continue
			}
			fmt.Fprintf(&b, "  server %d %s from %v until %v (granted %v, frame %d) refreshed=%v removed=%v late=%v\n", x.Server+1, x.CallID,
				x.From.Sub(a.Begin), x.Until.Sub(a.Begin), x.Granted, x.Frame, x.Refreshed, x.Removed, x.Late)
		}
	}
	b.WriteString("the line's transitions in that time:\n")
	for _, x := range w.trace.Transitions {
		if (x.At < first-30*time.Second || x.At > first+5*time.Second) && os.Getenv("WIRE_ALL") == "" {
			continue
		}
		fmt.Fprintf(&b, "  %v %s -> %s on %s (%s) server %d\n", x.At, x.From, x.To, x.Event, x.ID, x.Server+1)
	}
	return b.String()
}
