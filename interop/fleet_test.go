//go:build interop

package interop

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fleetLines is how many lines TestFleetAgainstKamailio runs (R21).
const fleetLines = 1000

// TestFleetAgainstKamailio: R21, I13 against the Kamailio pair. A
// thousand lines of one `sipfailover fleet`, users 20001-21000 created in
// the pair's database by the suite's script, register on the primary; the
// primary is killed and every line moves to the backup; it comes back and
// every line fails back; none is lost. The report's percentiles and each
// server's busiest second (at most the pacing's burst + rate) are logged.
func TestFleetAgainstKamailio(t *testing.T) {
	w := &world{t: t, dir: t.TempDir(), ports: map[string]int{}}
	for _, n := range []string{"primary", "backup"} {
		w.ports[n] = freePort(t)
	}
	t.Cleanup(func() { w.kam("stopall") })
	w.kam("fleetdb", strconv.Itoa(fleetLines), "2%04d", "pw-%d")
	w.kam("start", "primary", strconv.Itoa(w.ports["primary"]), "fleet")
	w.kam("start", "backup", strconv.Itoa(w.ports["backup"]), "fleet")

	const rate, burst = 300, 100
	settings := fmt.Sprintf(`pacing: {rate: %d, burst: %d}
lines:
  - user: template
    domain: interop.test
    t1: %v
    t2: %v
    keepalive_interval: 5s
    failback_interval: 3
    servers:
      - {addr: 127.0.0.1, port: %d, ttl: 60}
      - {addr: 127.0.0.1, port: %d, ttl: 60}
`, rate, burst, t1, 8*t1, w.ports["primary"], w.ports["backup"])
	path := filepath.Join(w.dir, "fleet.yaml")
	if err := os.WriteFile(path, []byte(settings), 0o600); err != nil {
		t.Fatal(err)
	}
	// FLEET_PICTURE=docs/fleet.png keeps the picture: the README shows one.
	keep := os.Getenv("FLEET_PICTURE")
	picture := filepath.Join(w.dir, "fleet"+cmp.Or(filepath.Ext(keep), ".svg"))
	cmd := exec.Command(binary, "fleet", "-config", path, "-lines", strconv.Itoa(fleetLines), "-user-pattern", "2%04d",
		"-password-pattern", "pw-%d", "-start-rate", "500", "-progress", "250ms", "-picture", picture)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	progress, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f := &fleetWatch{states: map[string]int{}, changed: make(chan struct{}, 1)}
	go f.read(progress)
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})

	took := f.await(t, "primary_registered", 60*time.Second)
	t.Logf("MEASURED fleet: %d lines registered on the primary in %v (start rate 500/s, pacing %d/s)", fleetLines, took.Round(time.Millisecond), rate)
	killed := w.kam("kill", "primary")
	f.await(t, "backup_registered", 60*time.Second)
	t.Logf("MEASURED fleet: every line on the backup %v after the primary was killed", time.Since(killed).Round(time.Millisecond))
	back := time.Now()
	w.kam("start", "primary", strconv.Itoa(w.ports["primary"]), "fleet")
	f.await(t, "primary_registered", 60*time.Second)
	t.Logf("MEASURED fleet: every line back on the primary %v after it restarted", time.Since(back).Round(time.Millisecond))

	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("fleet: %v\n%s", err, f.tail())
	}
	report := stdout.String()
	t.Logf("the report:\n%s", report)
	for _, want := range []string{
		fmt.Sprintf("fleet: %d lines", fleetLines),
		fmt.Sprintf("lines per state at the end, before de-registering: primary_registered %d\n", fleetLines),
		fmt.Sprintf("to registered on a backup: %d, p50", fleetLines),
		fmt.Sprintf("time on a backup, from registered there to registered on the primary again: %d, p50", fleetLines),
		fmt.Sprintf("failbacks, from the probe that succeeded to registered on the primary: %d, p50", fleetLines),
	} {
		if !strings.Contains(report, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	peaks := regexp.MustCompile(`(?m)^[12]\s+UDP 127\.0\.0\.1:(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$`).FindAllStringSubmatch(report, -1)
	if len(peaks) != 2 {
		t.Fatalf("the report has %d server rows, want 2", len(peaks))
	}
	for _, p := range peaks {
		// I13 allows B + R in any second; a send's timer that fires late
		// under load can carry a turn into the next second, so the check
		// leaves one more burst.
		if peak, _ := strconv.Atoi(p[4]); peak > 2*burst+rate {
			t.Errorf("server on port %s heard %d new requests in one second; pacing allows at most %d", p[1], peak, 2*burst+rate)
		}
	}
	// The backup never went down: every message the report counts for it,
	// Kamailio logged (loopback UDP may drop a few under load).
	log, err := os.ReadFile(filepath.Join(w.dir, "backup", "kamailio.log"))
	if err != nil {
		t.Fatal(err)
	}
	seen := bytes.Count(log, []byte("SEEN "))
	for _, p := range peaks {
		if p[1] != strconv.Itoa(w.ports["backup"]) {
			continue
		}
		if sent, _ := strconv.Atoi(p[2]); seen > sent || seen < sent*99/100 {
			t.Errorf("the report counts %d messages to the backup; Kamailio saw %d", sent, seen)
		}
	}
	drawn, err := os.ReadFile(picture)
	if err != nil || len(drawn) < 1000 {
		t.Fatalf("the picture: %d bytes, %v", len(drawn), err)
	}
	if strings.HasSuffix(picture, ".svg") && !bytes.Contains(drawn, []byte("new requests a second, per server")) {
		t.Errorf("the picture lacks the servers' load")
	}
	if keep != "" {
		if err := os.WriteFile(keep, drawn, 0o644); err != nil {
			t.Error(err)
		}
	}
}

// fleetWatch follows a fleet's progress lines ("fleet: 1.5s idle=3
// primary_registered=997") on its standard error.
type fleetWatch struct {
	mu      sync.Mutex
	states  map[string]int
	last    []string
	changed chan struct{}
}

var progressLine = regexp.MustCompile(`^fleet: \S+((?: \w+=\d+)*)$`)

func (f *fleetWatch) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		f.mu.Lock()
		f.last = append(f.last, line)
		if len(f.last) > 40 {
			f.last = f.last[1:]
		}
		if m := progressLine.FindStringSubmatch(line); m != nil {
			f.states = map[string]int{}
			for _, kv := range strings.Fields(m[1]) {
				k, v, _ := strings.Cut(kv, "=")
				f.states[k], _ = strconv.Atoi(v)
			}
		}
		f.mu.Unlock()
		select {
		case f.changed <- struct{}{}:
		default:
		}
	}
}

// await waits until every line is in state and returns how long that took.
func (f *fleetWatch) await(t *testing.T, state string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.After(within)
	for {
		f.mu.Lock()
		n := f.states[state]
		f.mu.Unlock()
		if n == fleetLines {
			return time.Since(start)
		}
		select {
		case <-f.changed:
		case <-deadline:
			t.Fatalf("after %v not every line is %s:\n%s", within, state, f.tail())
		}
	}
}

func (f *fleetWatch) tail() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.last, "\n")
}
