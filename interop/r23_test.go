//go:build interop

package interop

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/internal/capture"
)

// TestInviteFailsOverWithoutRegister: R23 against Kamailio, over UDP and
// TCP, to servers and through outbound proxies. The backup has
// register_on_enable 0 (the pair shares one registration database). The
// primary freezes; the user dials before anything else finds out: the
// INVITE goes to the primary within its budget, then to the backup at
// once, with no REGISTER of the line before it there, and the far end
// answers; the line registers on the backup after. With
// register_on_enable 1 (every other test) the REGISTER comes first.
func TestInviteFailsOverWithoutRegister(t *testing.T) {
	for _, c := range []struct {
		name      string
		transport int
		proxies   bool
	}{{"UDP", 0, false}, {"TCP", 1, false}, {"UDP proxies", 0, true}, {"TCP proxies", 1, true}} {
		t.Run(c.name, func(t *testing.T) {
			// No OPTIONS or flow keep-alive finds the frozen primary first.
			// The order on the wire is the order the line sent in: a
			// capture of the backup's port, not its log (two Kamailio
			// children log two datagrams of one instant in either order).
			file := filepath.Join(t.TempDir(), "run.pcap")
			var stop func()
			w := newWorldWith(t, &world{transport: c.transport, keepalive: 0, proxies: c.proxies, backupShared: true,
				extra: []string{"nat_keepalive_interval: 0s"}, beforeStart: func(w *world) {
					stop = tcpdumpFilter(t, file, fmt.Sprintf("port %d or port %d", w.ports["primary"], w.ports["backup"]))
				}})
			w.kam("freeze", "primary")
			start := time.Now()
			call, _ := w.call("confirmed", 10*time.Second)
			report(t, c.name+": call set-up, primary frozen, backup shared", time.Since(start), budget+3*rtt,
				"the INVITE's budget on the primary, then INVITE and 200 on the backup: no REGISTER between")
			if call.Server != 2 {
				t.Fatalf("the call went through server %d, want the backup", call.Server)
			}
			w.waitState("backup_registered", 5*time.Second)
			stop()
			s := w.agentCaptureSettings()
			s.Shared = []bool{false, true}
			a := analyze(t, file, s)
			invite, register := 0, 0
			for _, l := range a.Lines {
				for _, x := range l.Txns {
					switch {
					case x.Server != 1:
					case x.Method == "INVITE" && x.CallID == call.ID && invite == 0:
						invite = x.Sends[0].Frame
					case x.Method == "REGISTER" && register == 0:
						register = x.Sends[0].Frame
					}
				}
			}
			if invite == 0 || register == 0 || register < invite {
				t.Fatalf("on the wire the INVITE to the backup is frame %d and the line's first REGISTER there frame %d: want the INVITE first", invite, register)
			}
			// verify-capture, told the backup shares the registrations,
			// finds the INVITE's way there right (R23's I5).
			if v := verdictOf(a.Report("run.pcap"), "I5"); v.Status != capture.Held {
				t.Errorf("I5 on the wire: %s (%s %v), want held", v.Status, v.Why, v.Findings)
			}
			if c.proxies && w.saw("registrar", "INVITE", call.ID) == 0 {
				t.Fatal("the INVITE did not reach the registrar through the backup proxy")
			}
			ended, _ := w.hangup(call.ID, 5*time.Second)
			via := map[int]string{0: "UDP", 1: "TCP"}[c.transport]
			if want := fmt.Sprintf("BYE answered 200 by %s 127.0.0.1:%d", via, w.ports["backup"]); !strings.Contains(ended.Reason, want) {
				t.Fatalf("the call ended with %q, want %q", ended.Reason, want)
			}
		})
	}
}
