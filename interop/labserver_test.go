//go:build interop

package interop

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/internal/labserver"
)

// TestLabServersAgainstSIPp: the lab's server is proven against a client
// other than this project's: over UDP and TCP, SIPp registers through it
// with digest authentication, calls a SIPp that answers through it, and
// the call's ACK and BYE come back through it along its Record-Route.
func TestLabServersAgainstSIPp(t *testing.T) {
	for _, tr := range []struct{ network, sipp string }{{"udp", "u1"}, {"tcp", "t1"}} {
		t.Run(tr.network, func(t *testing.T) {
			dir := t.TempDir()
			r := &labserver.Registrar{Name: "primary", Network: tr.network, User: "1001", Password: "secret1001"}
			if err := r.Start(); err != nil {
				t.Fatal(err)
			}
			defer r.Stop()
			scenario := func(name string) string {
				p, err := filepath.Abs(name)
				if err != nil {
					t.Fatal(err)
				}
				return p
			}
			sipp := func(args ...string) *exec.Cmd {
				cmd := exec.Command("sipp", append(args, "-i", "127.0.0.1", "-t", tr.sipp, "-nostdin")...)
				cmd.Dir = dir // SIPp writes its logs where it runs
				return cmd
			}
			// The one that answers, then its registration as 1001.
			answerAt := freePort(t)
			uas := sipp("-sf", scenario("uas.xml"), "-p", fmt.Sprint(answerAt))
			if err := uas.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { uas.Process.Kill(); uas.Wait() }()
			if out, err := sipp(r.Addr, "-sf", scenario("lab_register.xml"), "-p", fmt.Sprint(freePort(t)), "-key", "contact_port", fmt.Sprint(answerAt),
				"-m", "1", "-timeout", "10s", "-timeout_error").CombinedOutput(); err != nil {
				t.Fatalf("SIPp's REGISTER: %v\n%.2000s", err, out)
			}
			if out, err := sipp(r.Addr, "-sf", scenario("uac.xml"), "-p", fmt.Sprint(freePort(t)), "-m", "1", "-timeout", "10s", "-timeout_error").CombinedOutput(); err != nil {
				t.Fatalf("SIPp's call through the lab's server: %v\n%.2000s", err, out)
			}
			time.Sleep(100 * time.Millisecond) // the last answer recorded
			var got []string
			for _, s := range r.Seen() {
				got = append(got, fmt.Sprintf("%s %d", s.Method, s.Answer))
				if s.Method == "REGISTER" && s.Answer == 200 && !s.Authorized {
					t.Errorf("a REGISTER taken without credentials")
				}
			}
			for _, want := range []string{"REGISTER 401", "REGISTER 200", "INVITE 200", "ACK 0", "BYE 200"} {
				if !slices.Contains(got, want) {
					t.Errorf("the lab's server saw %v; want %q among them", got, want)
				}
			}
		})
	}
}
