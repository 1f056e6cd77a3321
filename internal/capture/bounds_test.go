package capture

import (
	"testing"
	"time"
)

// TestWireBoundsAreTight: each bound the capture checks holds a phone that
// meets it exactly and flags one a millisecond (or a transaction) past
// it, so that no bound can drift loose unseen. With the test settings: a
// budget of 3.5 s (T1 500 ms, Signal Retry Counts 3), 1 s of slack, a
// Failback Interval of 60 s (I1's bound 60 s + 64*T1 + 1 s = 93 s) and
// I11's bound of 84 transactions a minute.
func TestWireBoundsAreTight(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		id    string
		story func(c *crafter, past bool)
	}{
		{"I1", func(c *crafter, past bool) { // the first probe from the backup, 93 s after its 2xx
			r := c.request("REGISTER", "reg-1", 1, 120)
			c.silent(0, primary, r, 1, true)
			c.register(time.Second, backup, "reg-1", 2, 120, false) // its 2xx at 1.01 s
			at := 94010 * ms
			if past {
				at += ms
			}
			c.register(at, primary, "probe-1", 1, 120, false)
		}},
		{"I2", func(c *crafter, past bool) { // the backup's REGISTER within the slack of the primary's budget
			c.register(0, primary, "reg-1", 1, 120, false)
			c.silent(60*time.Second, primary, c.request("REGISTER", "reg-1", 2, 120), 3, false) // the budget ends at 63.5 s
			at := 64500 * ms
			if past {
				at += ms
			}
			c.register(at, backup, "reg-1", 3, 120, false)
		}},
		{"I4", func(c *crafter, past bool) { // Signal Retry Counts 3: three transmissions within the budget, or four
			c.register(0, primary, "reg-1", 1, 120, false)
			r := c.request("REGISTER", "reg-1", 2, 120)
			sends := []time.Duration{60 * time.Second, 60500 * ms, 61500 * ms}
			if past {
				sends = append(sends, 62*time.Second)
			}
			for _, at := range sends {
				c.udp(at, phone, primary, r.String())
			}
			c.register(63500*ms, backup, "reg-1", 3, 120, false)
		}},
		{"I8", func(c *crafter, past bool) { // the refresh sent when the binding ends, or after
			c.register(0, primary, "reg-1", 1, 120, false) // bound until 120.01 s
			at := 120010 * ms
			if past {
				at += ms
			}
			c.register(at, primary, "reg-1", 2, 120, false)
			c.register(200*time.Second, primary, "reg-1", 3, 120, false)
		}},
		{"I11", func(c *crafter, past bool) { // 84 transactions on a server in a minute, or 85
			c.register(0, primary, "reg-1", 1, 120, false)
			n := 83
			if past {
				n = 84
			}
			for k := range n {
				o := c.request("OPTIONS", "ka", k+1, -1)
				at := time.Second + time.Duration(k)*500*ms
				c.udp(at, phone, primary, o.String())
				c.udp(at+10*ms, primary, phone, answer(o, 200, ""))
			}
		}},
	} {
		for _, past := range []bool{false, true} {
			c := newCrafter(t)
			tc.story(c, past)
			verdicts := c.verdicts()
			for id, v := range verdicts {
				if id != tc.id && v.Status == Violated {
					t.Errorf("%s story (past %v): %s violated too: %+v", tc.id, past, id, v.Findings)
				}
			}
			want := map[bool]string{false: Held, true: Violated}[past]
			if v := verdicts[tc.id]; v.Status != want {
				t.Errorf("%s past the bound %v: %s (%s %+v), want %s", tc.id, past, v.Status, v.Why, v.Findings, want)
			}
		}
	}
}
