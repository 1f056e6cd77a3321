package runtime_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sipfailover/sipfailover/runtime"
)

func TestExampleSettingsParse(t *testing.T) {
	c, err := runtime.LoadConfig("../docs/lines.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Lines) != 2 || *c.Lines[0].Defaults().Servers[1].Port != 5060 || *c.Lines[1].Defaults().Servers[0].Transport != runtime.TransportTLS {
		t.Fatalf("unexpected settings: %+v", c)
	}
}

// TestValidateNamesEveryProblem: R2, every bad field is reported with its
// line and field, in one error.
func TestValidateNamesEveryProblem(t *testing.T) {
	src := `
lines:
  - name: lobby
    user: "1001"
    servers:
      - {addr: "", port: 70000, transport: 2}
      - {addr: "bad host!", ttl: 0}
    failback_interval: -5
    signal_retry_counts: 0
    retry_mode: sometimes
    t1: -1s
  - name: hasty
    user: "1003"
    servers: [{addr: 127.0.0.1}, {addr: 127.0.0.2}]
    retry_mode: time
    retry_time: 100ms
  - user: ""
    servers:
      - {addr: 127.0.0.1}
`
	_, err := runtime.ParseConfig([]byte(src))
	var ve *runtime.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("got %v, want a *ValidationError", err)
	}
	want := []string{
		"line 1 (lobby): servers[0].addr: empty",
		"line 1 (lobby): servers[0].port: 70000 is outside 1-65535",
		"line 1 (lobby): servers[0].transport: 2 is not 0 (UDP), 1 (TCP) or 3 (TLS)",
		`line 1 (lobby): servers[1].addr: "bad host!" is neither an IP address nor a domain name`,
		"line 1 (lobby): servers[1].ttl: 0: the registration TTL must be positive",
		"line 1 (lobby): failback_interval: -5: must be positive (seconds)",
		"line 1 (lobby): signal_retry_counts: 0 is outside 1-10",
		`line 1 (lobby): retry_mode: "sometimes" is not count or time`,
		"line 1 (lobby): t1: -1s: must be positive",
		"line 2 (hasty): retry_time: 100ms is below t1 (500ms), the round-trip estimate: no answer could come in time",
		"line 3: user: empty: the line needs a user name",
		"line 3: servers: 1 servers; a line has 2 to 4 (primary first)",
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

func TestUnknownSettingIsAnError(t *testing.T) {
	_, err := runtime.ParseConfig([]byte("lines:\n  - user: a\n    failback_intervall: 10\n"))
	if err == nil || !strings.Contains(err.Error(), "failback_intervall") {
		t.Fatalf("got %v", err)
	}
}

func TestNoLines(t *testing.T) {
	if _, err := runtime.ParseConfig([]byte("lines: []\n")); !errors.Is(err, runtime.ErrNoLines) {
		t.Fatalf("got %v", err)
	}
}

// TestSaveConfig: R15, the settings are stored whole and read back the
// same; a config with a problem is not written and the old file stays.
func TestSaveConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lines.yaml")
	port := 5070
	c := runtime.Config{Lines: []runtime.LineConfig{{Name: "lobby", User: "1001", Password: "pw",
		Servers: []runtime.ServerConfig{{Addr: "10.0.0.1"}, {Addr: "backup.example.com", Port: &port}}}}}
	if err := runtime.SaveConfig(path, c); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	back, err := runtime.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Lines[0]; got.Name != "lobby" || got.Password != "pw" || *got.Servers[1].Port != 5070 || got.Servers[1].Addr != "backup.example.com" {
		t.Fatalf("read back %+v", got)
	}
	bad := c
	bad.Lines = []runtime.LineConfig{c.Lines[0]}
	bad.Lines[0].Servers = []runtime.ServerConfig{{Addr: ""}, {Addr: "x"}}
	if err := runtime.SaveConfig(path, bad); err == nil {
		t.Fatal("a config with an empty address was saved")
	}
	after, _ := os.ReadFile(path)
	if string(after) != string(before) {
		t.Fatal("a refused save changed the file")
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*.tmp")); len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
}
