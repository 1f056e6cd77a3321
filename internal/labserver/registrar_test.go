package labserver

import (
	"strings"
	"testing"
)

// TestRegistrarChallenges: a REGISTER is challenged, then taken with the
// right password under MD5 and SHA-256 and refused with a wrong one; a
// registration through one server is found through another that shares
// its database, as the seed's primary and backup share theirs.
func TestRegistrarChallenges(t *testing.T) {
	for _, alg := range []string{"MD5", "SHA-256"} {
		loc := NewLocation()
		users := map[string]string{"1002": "far"}
		primary := &Registrar{Name: "primary", User: "1001", Password: "pw", Users: users, Algorithm: alg, Location: loc, MaxExpires: 60}
		backup := &Registrar{Name: "backup", User: "1001", Password: "pw", Users: users, Algorithm: alg, Location: loc}
		for _, r := range []*Registrar{primary, backup} {
			if err := r.Start(); err != nil {
				t.Fatal(err)
			}
			defer r.Stop()
		}
		good := &Phone{User: "1002", Password: "far"}
		bad := &Phone{User: "1002", Password: "wrong"}
		for _, p := range []*Phone{good, bad} {
			if err := p.Start(); err != nil {
				t.Fatal(err)
			}
			defer p.Stop()
		}
		if err := good.Register(primary.Addr); err != nil {
			t.Errorf("%s: the right password: %v", alg, err)
		}
		if err := bad.Register(primary.Addr); err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("%s: a wrong password: %v, want 401", alg, err)
		}
		if c, ok := loc.Lookup("1002"); !ok || !strings.Contains(c, good.Addr) {
			t.Errorf("%s: the shared database has %q, %v; want the phone's %s", alg, c, ok, good.Addr)
		}
		seen := primary.Seen()
		if len(seen) < 2 || seen[0].Answer != 401 || seen[1].Answer != 200 || !seen[1].Authorized {
			t.Errorf("%s: the primary saw %+v; want a 401, then a 200 to the authorized REGISTER", alg, seen)
		}
		if !primary.Registered() || backup.Registered() {
			t.Errorf("%s: registered on the primary %v, on the backup %v", alg, primary.Registered(), backup.Registered())
		}
	}
}
