package runtimetest

import "testing"

// TestParseRegistrarRogue: a simulated proxy's answer for a registrar
// behind it (R22) is a failure code of 300-699, or up; the edges of the
// range are accepted and one past them refused, and up clears it.
func TestParseRegistrarRogue(t *testing.T) {
	for code, ok := range map[string]bool{"300": true, "408": true, "699": true, "299": false, "700": false, "x": false} {
		f, err := ParseSimRogue([]string{"registrar", "reg.test", code})
		if (err == nil) != ok {
			t.Errorf("registrar reg.test %s: %v, want accepted=%v", code, err, ok)
			continue
		}
		if ok {
			s := &SimServer{}
			f(s)
			if s.Behind["reg.test"] == 0 {
				t.Errorf("registrar reg.test %s: nothing set", code)
			}
			up, _ := ParseSimRogue([]string{"registrar", "reg.test", "up"})
			if up(s); s.Behind["reg.test"] != 0 {
				t.Errorf("registrar reg.test up after %s: still %d", code, s.Behind["reg.test"])
			}
		}
	}
}
