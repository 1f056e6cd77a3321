package capture

import (
	"bytes"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// TestFlowKeepalivesExplainAFailover: a phone that leaves its primary
// without a REGISTER failing there has left it for a reason when a flow
// keep-alive (RFC 5626 4.4, a STUN Binding request) found the primary
// gone: it drew ICMP port unreachable, or the primary, which had answered
// one, left the next unanswered for 10 s. Where the primary never
// answered keep-alives, its silence is no reason, and I3 holds the phone
// to it. Keep-alives are no SIP: none is a problem of the capture.
func TestFlowKeepalivesExplainAFailover(t *testing.T) {
	const s = time.Second
	for _, c := range []struct {
		name     string
		answered bool // the primary answered the first keep-alive
		icmp     bool // the second draws ICMP
		want     string
	}{
		{"unanswered after an answer", true, false, Held},
		{"ICMP for a keep-alive", false, true, Held},
		{"never answered", false, false, Violated},
	} {
		t.Run(c.name, func(t *testing.T) {
			cr := newCrafter(t)
			cr.register(0, primary, "reg", 1, 3600, false)
			first := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
			cr.udp(25*s, phone, primary, string(first.Raw))
			if c.answered {
				ok := stun.MustBuild(stun.NewTransactionIDSetter(first.TransactionID), stun.BindingSuccess, stun.Fingerprint)
				cr.udp(25*s+10*time.Millisecond, primary, phone, string(ok.Raw))
			}
			second := string(stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint).Raw)
			cr.udp(50*s, phone, primary, second)
			failover := 60 * s
			if c.icmp {
				cr.icmp(50*s+10*time.Millisecond, primary, second)
				failover = 50*s + 20*time.Millisecond
			} else {
				for _, d := range []time.Duration{500, 1500, 3500, 7500} {
					cr.udp(50*s+d*time.Millisecond, phone, primary, second)
				}
			}
			cr.register(failover, backup, "reg", 2, 3600, false)
			a, err := Analyze(bytes.NewReader(cr.bytes()), settings())
			if err != nil {
				t.Fatal(err)
			}
			if len(a.Problems) > 0 {
				t.Errorf("keep-alives reported as problems: %v", a.Problems)
			}
			if v := cr.verdicts()["I3"]; v.Status != c.want {
				t.Errorf("I3 %s (%s %v), want %s", v.Status, v.Why, v.Findings, c.want)
			}
		})
	}
}
