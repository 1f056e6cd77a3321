//go:build interop

package interop

import (
	"fmt"
	"strings"
	"testing"
	"time"
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
			w := newWorldWith(t, &world{transport: c.transport, keepalive: 0, proxies: c.proxies, backupShared: true,
				extra: []string{"nat_keepalive_interval: 0s"}})
			w.kam("freeze", "primary")
			start := time.Now()
			call, _ := w.call("confirmed", 10*time.Second)
			report(t, c.name+": call set-up, primary frozen, backup shared", time.Since(start), budget+3*rtt,
				"the INVITE's budget on the primary, then INVITE and 200 on the backup: no REGISTER between")
			if call.Server != 2 {
				t.Fatalf("the call went through server %d, want the backup", call.Server)
			}
			order := w.seen("backup")
			invite, register := -1, -1
			for i, s := range order {
				switch {
				case s.method == "INVITE" && s.callID == call.ID && invite < 0:
					invite = i
				case s.method == "REGISTER" && s.from == "1001" && register < 0:
					register = i
				}
			}
			if invite < 0 || (register >= 0 && register < invite) {
				t.Fatalf("the backup saw the INVITE at %d and the line's first REGISTER at %d: want the INVITE first", invite, register)
			}
			w.waitState("backup_registered", 5*time.Second)
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
