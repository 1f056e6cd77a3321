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
	"strings"
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
	return tcpdumpFilter(t, file, filter)
}

// tcpdumpFilter is tcpdump with a capture filter of its own.
func tcpdumpFilter(t *testing.T, file, filter string) (stop func()) {
	t.Helper()
	cmd := exec.Command("tcpdump", "-i", "lo", "--immediate-mode", "-B", "65536", "-U", "-s", "0", "-w", file, filter)
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
// failover it shows (I1, I2, I3, I4, I5, I10) are decided (I2 over UDP).
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

			s := w.agentCaptureSettings()
			r := check(t, file, s)
			js, _ := json.MarshalIndent(r.Verdicts, "", "  ")
			t.Logf("%d frames, %d SIP messages over %v; problems %v\n%s", r.Frames, r.Messages, r.Duration, r.Problems, js)
			for _, v := range r.Verdicts {
				if v.Status == capture.Violated {
					t.Errorf("%s violated: %+v", v.ID, v.Findings)
				}
			}
			// Over TCP the killed primary shows as a refused connection,
			// and the wire does not say what it would have carried (a
			// call's INVITE moves nothing): I2 may not be decidable there.
			for _, id := range []string{"I1", "I2", "I3", "I4", "I5", "I10", "I11"} {
				if i := verdictOf(r, id); i.Status != capture.Held && !(id == "I2" && tr.transport == 1 && i.Status == capture.Undecidable) {
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

// captureSettings are the seed's settings of a phone whose servers are
// the world's primary and backup, captured from before it started.
func (w *world) captureSettings() capture.Settings {
	s := capture.DefaultSettings()
	for _, n := range []string{"primary", "backup"} {
		s.Servers = append(s.Servers, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(w.ports[n])))
	}
	s.FromBoot = true
	return s
}

// agentCaptureSettings are the settings the world's agent runs with
// (world.settings), as verify-capture takes them, with round trips through
// Kamailio as the slack.
func (w *world) agentCaptureSettings() capture.Settings {
	s := w.captureSettings()
	s.T1, s.T2, s.RetryCounts, s.FailbackInterval, s.Keepalive = t1, 8*t1, 3, failback, w.keepalive
	s.BackoffBase, s.BackoffMax = time.Second, 2*time.Second
	s.Slack = 4 * rtt
	return s
}

// analyze reads the capture in file with settings s.
func analyze(t *testing.T, file string, s capture.Settings) *capture.Analysis {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := capture.Analyze(f, s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// check reads the capture in file and checks it with settings s.
func check(t *testing.T, file string, s capture.Settings) capture.Report {
	t.Helper()
	return analyze(t, file, s).Report(filepath.Base(file))
}

func verdictOf(r capture.Report, id string) capture.Verdict {
	for _, v := range r.Verdicts {
		if v.ID == id {
			return v
		}
	}
	return capture.Verdict{}
}

// TestCaptureOfBrokenPhones: SIPp as a stand-in phone that breaks an
// invariant on purpose, against the Kamailio pair, captured by tcpdump
// from before it starts; verify-capture flags that invariant with the
// frames that show it.
func TestCaptureOfBrokenPhones(t *testing.T) {
	for _, c := range []struct {
		name  string
		id    string
		story func(w *world, phone func(server, scenario string, args ...string))
	}{
		{"never fails over", "I2", func(w *world, phone func(string, string, ...string)) {
			w.kam("kill", "primary")
			phone("primary", "phone.xml", "-max_non_invite_retrans", "2")
			phone("primary", "phone.xml", "-max_non_invite_retrans", "2")
		}},
		{"skips the primary", "I3", func(w *world, phone func(string, string, ...string)) {
			phone("backup", "phone.xml")
		}},
		{"retransmits one time too many", "I4", func(w *world, phone func(string, string, ...string)) {
			w.kam("freeze", "primary")
			phone("primary", "phone.xml", "-max_non_invite_retrans", "3")
			phone("backup", "phone.xml")
		}},
		{"INVITE to the backup before registering there", "I5", func(w *world, phone func(string, string, ...string)) {
			phone("primary", "phone.xml")
			phone("backup", "phone_invite.xml")
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := &world{t: t, dir: t.TempDir(), ports: map[string]int{}}
			for _, n := range []string{"primary", "backup", "phone"} {
				w.ports[n] = freePort(t)
			}
			t.Cleanup(func() { w.kam("stopall") })
			w.kam("start", "primary", fmt.Sprint(w.ports["primary"]))
			w.kam("start", "backup", fmt.Sprint(w.ports["backup"]))
			file := filepath.Join(w.dir, "phone.pcap")
			stop := tcpdump(t, file, w.ports["primary"], w.ports["backup"])
			here, _ := os.Getwd()
			c.story(w, func(server, scenario string, args ...string) {
				cmd := exec.Command("sipp", append([]string{fmt.Sprintf("127.0.0.1:%d", w.ports[server]), "-sf", filepath.Join(here, scenario),
					"-i", "127.0.0.1", "-p", fmt.Sprint(w.ports["phone"]), "-m", "1", "-timeout", "6s", "-timeout_error", "-nostdin"}, args...)...)
				cmd.Dir = w.dir
				out, err := cmd.CombinedOutput() // a phone that fails its scenario is part of the story
				t.Logf("sipp %s %s: %v (%d bytes of output)", server, scenario, err, len(out))
			})
			stop()
			s := w.captureSettings()
			r := check(t, file, s)
			v := verdictOf(r, c.id)
			t.Logf("%d frames, %d SIP messages; %s %s: %s %+v", r.Frames, r.Messages, v.ID, v.Status, v.Why, v.Findings)
			if v.Status != capture.Violated || len(v.Findings) == 0 || len(v.Findings[0].Frames) == 0 {
				t.Errorf("%s: %s (%s), want violated with frames", c.id, v.Status, v.Why)
			}
			if keep := os.Getenv("KEEP_CAPTURE"); keep != "" {
				data, _ := os.ReadFile(file)
				name := "sipp_" + strings.ReplaceAll(c.name, " ", "_")
				os.WriteFile(filepath.Join(keep, name+".pcap"), data, 0o644)
				os.WriteFile(filepath.Join(keep, name+".servers"), []byte(fmt.Sprintf("%s,%s\n", s.Servers[0], s.Servers[1])), 0o644)
			}
		})
	}
}

// TestCaptureThroughput: how fast verify-capture checks a capture of at
// least 100,000 SIP packets that SIPp made: its built-in caller against its
// built-in answerer, 17,000 calls of six messages (INVITE, 180, 200, ACK, BYE, 200), captured by tcpdump.
// Without a REGISTER, every INVITE breaks I5; the checking is what counts.
func TestCaptureThroughput(t *testing.T) {
	dir := t.TempDir()
	uasPort, uacPort := freePort(t), freePort(t)
	file := filepath.Join(dir, "load.pcap")
	stop := tcpdump(t, file, uasPort)
	uas := exec.Command("sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", fmt.Sprint(uasPort), "-nostdin")
	uas.Dir = dir
	if err := uas.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uas.Process.Kill(); uas.Wait() })
	uac := exec.Command("sipp", fmt.Sprintf("127.0.0.1:%d", uasPort), "-sn", "uac", "-i", "127.0.0.1", "-p", fmt.Sprint(uacPort),
		"-r", "2500", "-l", "2000", "-m", "17000", "-d", "0", "-nostdin", "-timeout", "120s", "-timeout_error")
	uac.Dir = dir
	if out, err := uac.CombinedOutput(); err != nil {
		t.Fatalf("sipp: %v\n%s", err, out[max(0, len(out)-2000):])
	}
	stop()
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	s := capture.DefaultSettings()
	s.Servers = []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(uasPort))}
	start := time.Now()
	r := check(t, file, s)
	took := time.Since(start)
	t.Logf("%d frames, %d SIP messages (%d MB) checked in %v: %.0f frames a second; I5 %s with %d findings",
		r.Frames, r.Messages, st.Size()>>20, took.Round(time.Millisecond), float64(r.Frames)/took.Seconds(), verdictOf(r, "I5").Status, len(verdictOf(r, "I5").Findings))
	if r.Messages < 100000 {
		t.Errorf("%d SIP messages, want at least 100,000 (did tcpdump drop some?)", r.Messages)
	}
	if v := verdictOf(r, "I5"); v.Status != capture.Violated || len(v.Findings) != 17000 {
		t.Errorf("I5 %s with %d findings, want one for each of the 17,000 INVITEs", v.Status, len(v.Findings))
	}
}
