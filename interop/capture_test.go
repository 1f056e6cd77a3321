//go:build interop

package interop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/internal/capture"
)

// tcpdump captures the SIP of the primary's and the backup's ports, and
// ICMP, on loopback into file until the test ends or stop is called.
func tcpdump(t *testing.T, file string, ports ...int) (stop func()) {
	t.Helper()
	filter := "icmp"
	for _, p := range ports {
		filter += fmt.Sprintf(" or port %d", p)
	}
	cmd := exec.Command("tcpdump", "-i", "lo", "--immediate-mode", "-U", "-s", "0", "-w", file, filter)
	log, err := os.Create(file + ".log")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("tcpdump: %v (interop/setup installs it)", err)
	}
	// tcpdump says when it listens; until then nothing is captured.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := os.ReadFile(file + ".log")
		if len(out) > 0 && (bytes.Contains(out, []byte("listening on")) || time.Now().After(deadline)) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		time.Sleep(200 * time.Millisecond) // the last packets reach the file
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		log.Close()
	}
	t.Cleanup(stop)
	return stop
}

// TestCaptureOfTheRuntime: verify-capture on what tcpdump saw of the
// program against the Kamailio pair, from before it started: it registers
// on the primary, calls through it, the primary is killed, the line fails
// over, calls through the backup, the primary restarts and the line fails
// back. Every invariant the capture decides holds, and those about the
// failover it shows (I1, I2, I3, I4, I5, I10) are decided.
func TestCaptureOfTheRuntime(t *testing.T) {
	for _, tr := range []struct {
		name      string
		transport int
	}{{"udp", 0}, {"tcp", 1}} {
		t.Run(tr.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "runtime.pcap")
			var stop func()
			w := newWorldWith(t, &world{transport: tr.transport, keepalive: keepalive, beforeStart: func(w *world) {
				stop = tcpdump(t, file, w.ports["primary"], w.ports["backup"])
			}})
			c, _ := w.call("confirmed", 5*time.Second)
			w.hangup(c.ID, 5*time.Second)
			w.kam("kill", "primary")
			w.waitState("backup_registered", 10*time.Second)
			c, _ = w.call("confirmed", 5*time.Second)
			w.hangup(c.ID, 5*time.Second)
			w.kam("start", "primary", fmt.Sprint(w.ports["primary"]))
			w.waitState("primary_registered", failback+64*t1+time.Second)
			stop()

			s := capture.DefaultSettings()
			s.Servers = []netip.AddrPort{
				netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(w.ports["primary"])),
				netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(w.ports["backup"])),
			}
			s.T1, s.T2, s.RetryCounts, s.FailbackInterval, s.Keepalive, s.BackoffBase = t1, 8*t1, 3, failback, keepalive, time.Second
			s.Slack, s.FromBoot = 4*rtt, true
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			a, err := capture.Analyze(f, s)
			if err != nil {
				t.Fatal(err)
			}
			r := a.Report(tr.name)
			js, _ := json.MarshalIndent(r.Verdicts, "", "  ")
			t.Logf("%d frames, %d SIP messages over %v; problems %v\n%s", r.Frames, r.Messages, r.Duration, r.Problems, js)
			for _, v := range r.Verdicts {
				if v.Status == capture.Violated {
					t.Errorf("%s violated: %+v", v.ID, v.Findings)
				}
			}
			for _, id := range []string{"I1", "I2", "I3", "I4", "I5", "I10", "I11"} {
				if i := verdictOf(r, id); i.Status != capture.Held {
					t.Errorf("%s: %s (%s), want held", id, i.Status, i.Why)
				}
			}
			if keep := os.Getenv("KEEP_CAPTURE"); keep != "" {
				// A capture for internal/capture's tests, with the servers it
				// names.
				data, _ := os.ReadFile(file)
				os.WriteFile(filepath.Join(keep, "runtime_"+tr.name+".pcap"), data, 0o644)
				os.WriteFile(filepath.Join(keep, "runtime_"+tr.name+".servers"), []byte(fmt.Sprintf("%s,%s\n", s.Servers[0], s.Servers[1])), 0o644)
			}
		})
	}
}

func verdictOf(r capture.Report, id string) capture.Verdict {
	for _, v := range r.Verdicts {
		if v.ID == id {
			return v
		}
	}
	return capture.Verdict{}
}
