package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sipfailover/sipfailover/runtime/settings"
)

// TestLabRefusesBadInput: each unusable flag is named, with exit 2, before
// the lab listens anywhere; a port in use is said as such.
func TestLabRefusesBadInput(t *testing.T) {
	busy, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	account := []string{"-user", "1001", "-password", "pw"}
	badPlan := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(badPlan, []byte("cases:\n  - fault: melt\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-primary", "nowhere"}, `-primary "nowhere": an address and a port`},
		{[]string{"-backup", "192.0.2.1:5060"}, "-backup: 192.0.2.1 is no address of this machine"},
		{[]string{"-transport", "tls"}, `-transport "tls": udp or tcp`},
		{[]string{"-expires", "5"}, "-expires 5: 10 to 86400 seconds"},
		{[]string{"-retry-after", "0"}, "-retry-after 0: 1 to 3600 seconds"},
		{[]string{"-wait", "-1s"}, "-wait -1s: 0 to 1h"},
		{[]string{"-algorithm", "SHA-1"}, `-algorithm "SHA-1": MD5 or SHA-256`},
		{[]string{"-hangup", "true"}, "-hangup without -dial"},
		{[]string{"-cases", "503/timers,melt/timers"}, `-cases: "melt/timers" is no case of the plan`},
		{[]string{"-retry-counts", "0"}, "-retry-counts 0: 1 to 64"},
		{[]string{"-settings", "no-such-file.yaml"}, "-settings:"},
		{[]string{"-plan", "no-such-plan.yaml"}, "no-such-plan.yaml"},
		{[]string{"-plan", badPlan}, badPlan + ":2:12: fault \"melt\""},
		{nil, "-user and -password"},
		{[]string{"-primary", busy.LocalAddr().String()}, "address already in use"},
	} {
		args := c.args
		if c.want != "-user and -password" {
			args = append(append([]string{}, account...), args...)
		}
		var out, errOut strings.Builder
		if code := run(append([]string{"lab"}, args...), &out, &errOut); code != 2 || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("lab %v: exit %d, %q; want 2 and %q", args, code, errOut.String(), c.want)
		}
	}
}

// TestLabListsItsPlan: -list prints the plan the line model gives, the
// model's events beside each case, and runs nothing.
func TestLabListsItsPlan(t *testing.T) {
	var out, errOut strings.Builder
	if code := run([]string{"lab", "-list", "-transport", "tcp"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"503/timers", "kill/timers              transport.tcp", "freeze/call", "kill/hangup", "both-down"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the plan lacks %q:\n%s", want, out.String())
		}
	}
}

// TestLabPhoneExample: the README's softphone for the lab loads, and its
// servers are where the lab listens by default.
func TestLabPhoneExample(t *testing.T) {
	c, err := settings.Load("../../docs/lab-phone.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range c.Lines[0].Servers {
		got = append(got, fmt.Sprintf("%s:%d", s.Addr, *s.Port))
	}
	if want := []string{labPrimary, labBackup}; !slices.Equal(got, want) {
		t.Errorf("docs/lab-phone.yaml has servers %v; the lab listens at %v", got, want)
	}
}

// TestLabLimitsAtTheirEdges: each numeric flag takes its edge and refuses
// one past it.
func TestLabLimitsAtTheirEdges(t *testing.T) {
	for _, c := range []struct{ flag, edge, past string }{
		{"-expires", "10", "9"}, {"-expires", "86400", "86401"},
		{"-retry-after", "1", "0"}, {"-retry-after", "3600", "3601"},
		{"-slow", "1", "0"}, {"-slow", "99", "100"},
		{"-wait", "0s", "-1ns"}, {"-wait", "1h", "1h0m0.000000001s"},
	} {
		var out, errOut strings.Builder
		if code := run([]string{"lab", "-list", c.flag, c.edge}, &out, &errOut); code != 0 {
			t.Errorf("%s %s: exit %d (%s), want it taken", c.flag, c.edge, code, errOut.String())
		}
		out.Reset()
		errOut.Reset()
		if code := run([]string{"lab", "-list", c.flag, c.past}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), c.flag) {
			t.Errorf("%s %s: exit %d (%s), want 2 naming the flag", c.flag, c.past, code, errOut.String())
		}
	}
}
