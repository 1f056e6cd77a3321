package settings_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/runtime/settings"
	"pgregory.net/rapid"
)

func TestExampleSettingsParse(t *testing.T) {
	c, err := settings.Load("../../docs/lines.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Lines) != 2 || *c.Lines[0].Defaults().Servers[1].Port != 5060 || *c.Lines[1].Defaults().Servers[0].Transport != settings.TransportTLS {
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
      - {addr: "", port: 70000, transport: 4}
      - {addr: "bad host!", ttl: 0}
    failback_interval: -5
    signal_retry_counts: 0
    retry_mode: sometimes
    t1: -1s
  - name: hasty
    user: "1003"
    servers: [{addr: 127.0.0.1, transport: 2}, {addr: 127.0.0.2}]
    retry_mode: time
    retry_time: 100ms
  - user: ""
    servers:
      - {addr: 127.0.0.1}
`
	_, err := settings.Parse([]byte(src))
	var ve *settings.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("got %v, want a *ValidationError", err)
	}
	// Every problem at once, each at its place in the file and named by its
	// path there, as the model compiler reports them; a setting left out
	// (here invite_retry_counts, which takes signal_retry_counts) at its
	// line's block.
	want := []string{
		"3:5: lines[0] (lobby).invite_retry_counts: 0 is below the minimum 1",
		"6:16: lines[0] (lobby).servers[0].addr: empty",
		"6:26: lines[0] (lobby).servers[0].port: 70000 is outside 0-65535",
		"6:44: lines[0] (lobby).servers[0].transport: 4 is not 0 (UDP), 1 (TCP), 3 (TLS) or 2 (what the name's DNS NAPTR records say)",
		`7:16: lines[0] (lobby).servers[1].addr: "bad host!" is neither an IP address nor a domain name`,
		"7:34: lines[0] (lobby).servers[1].ttl: 0 is outside 10-604800 (seconds)",
		"8:24: lines[0] (lobby).failback_interval: -5s is below the minimum 1s",
		"9:26: lines[0] (lobby).signal_retry_counts: 0 is below the minimum 1",
		`10:17: lines[0] (lobby).retry_mode: "sometimes" is not count or time`,
		"11:9: lines[0] (lobby).t1: -1s is below the minimum 1ms",
		"14:44: lines[1] (hasty).servers[0].transport: 2 (DNS NAPTR) needs a domain name; 127.0.0.1 is an address",
		"16:17: lines[1] (hasty).retry_time: 100ms is below t1 (500ms), the round-trip estimate: no answer could come in time",
		"17:11: lines[2].user: empty: the line needs a user name",
		"19:7: lines[2].servers: 1 servers; a line has 2 to 4 (primary first)",
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

// TestEveryProblemOfAFileAtOnce: a misspelt field does not hide the bad
// values after it; a value of the wrong kind is reported where it stands,
// once (not again as the zero it left); each problem has the file, line
// and column; durations are spelt one way.
func TestEveryProblemOfAFileAtOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	src := `lines:
  - name: l1
    user: "1001"
    pasword: secret
    retry_mode: time
    retry_time: 500us
    servers:
      - {addr: 127.0.0.1, port: many}
      - {addr: 127.0.0.2, port: 70000}
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := settings.Load(path)
	want := []string{
		path + `:4:5: unknown field "pasword" (did you mean "password"?)`,
		path + ":6:17: lines[0] (l1).retry_time: 500us is below the minimum 1ms",
		path + ":6:17: lines[0] (l1).retry_time: 500us is below t1 (500ms)",
		path + ":8:33: lines[0] (l1).servers[0].port: cannot unmarshal !!str `many` into int",
		path + ":9:33: lines[0] (l1).servers[1].port: 70000 is outside 0-65535 (0: look the name up in DNS SRV)",
	}
	if err == nil {
		t.Fatal("accepted")
	}
	got := strings.Split(err.Error(), "\n")
	if len(got) != len(want) {
		t.Errorf("%d problems, want %d:\n%v", len(got), len(want), err)
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, w) }) {
			t.Errorf("no problem reads %q:\n%v", w, err)
		}
	}
	if strings.Contains(err.Error(), "µs") {
		t.Errorf("durations spelt two ways:\n%v", err)
	}
}

func TestUnknownSettingIsAnError(t *testing.T) {
	_, err := settings.Parse([]byte("lines:\n  - user: a\n    failback_intervall: 10\n"))
	if err == nil || !strings.Contains(err.Error(), "failback_intervall") {
		t.Fatalf("got %v", err)
	}
}

func TestNoLines(t *testing.T) {
	if _, err := settings.Parse([]byte("lines: []\n")); !errors.Is(err, settings.ErrNoLines) {
		t.Fatalf("got %v", err)
	}
}

// TestSaveConfig: R15, the settings are stored whole and read back the
// same; a config with a problem is not written and the old file stays.
func TestSaveConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lines.yaml")
	port := 5070
	c := settings.Config{Lines: []settings.LineConfig{{Name: "lobby", User: "1001", Password: "pw",
		Servers: []settings.ServerConfig{{Addr: "10.0.0.1"}, {Addr: "backup.example.com", Port: &port}}}}}
	if err := settings.Save(path, c); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	back, err := settings.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Lines[0]; got.Name != "lobby" || got.Password != "pw" || *got.Servers[1].Port != 5070 || got.Servers[1].Addr != "backup.example.com" {
		t.Fatalf("read back %+v", got)
	}
	bad := c
	bad.Lines = []settings.LineConfig{c.Lines[0]}
	bad.Lines[0].Servers = []settings.ServerConfig{{Addr: ""}, {Addr: "x"}}
	if err := settings.Save(path, bad); err == nil {
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

// TestLimitsAtBothEdges: every bounded setting is accepted at its edges and
// refused one past them (R2); the bounds of settings that become model
// params are the models' own (min and max in model/*.yaml).
func TestLimitsAtBothEdges(t *testing.T) {
	line := func(extra, server string) string {
		return "lines:\n- user: a\n" + extra + "  servers:\n  - {addr: 127.0.0.1" + server + "}\n  - {addr: 127.0.0.2}\n"
	}
	for _, tc := range []struct {
		field    string
		ok, bad  []string // YAML for the line, or ", key: v" for the primary
		inServer bool
	}{
		{"servers[0].port", []string{", port: 0", ", port: 1", ", port: 65535"}, []string{", port: -1", ", port: 65536"}, true},
		{"servers[0].ttl", []string{", ttl: 10", ", ttl: 604800"}, []string{", ttl: 9", ", ttl: 604801"}, true},
		{"servers[0].transport", []string{", transport: 0", ", transport: 3"}, []string{", transport: 2", ", transport: 4", ", transport: -1"}, true},
		{"signal_retry_counts", []string{"  signal_retry_counts: 1\n", "  signal_retry_counts: 10\n"}, []string{"  signal_retry_counts: 0\n", "  signal_retry_counts: 11\n"}, false},
		{"invite_retry_counts", []string{"  invite_retry_counts: 1\n", "  invite_retry_counts: 10\n"}, []string{"  invite_retry_counts: 0\n", "  invite_retry_counts: 11\n"}, false},
		{"failback_mode", []string{"  failback_mode: duration\n", "  failback_mode: registration\n", "  failback_mode: new_requests\n"},
			[]string{"  failback_mode: sometimes\n", "  failback_mode: dns_ttl\n"}, false}, // dns_ttl: the primary is an address here
		{"failback_when", []string{"  failback_when: idle\n", "  failback_when: always\n"}, []string{"  failback_when: never\n"}, false},
		{"registration_mode", []string{"  registration_mode: successive\n", "  registration_mode: concurrent\n"}, []string{"  registration_mode: parallel\n"}, false},
		{"failback_interval", []string{"  failback_interval: 1\n", "  failback_interval: 86400\n"},
			[]string{"  failback_interval: 0\n", "  failback_interval: 86401\n", "  failback_interval: 9223372037\n"}, false},
		{"t1", []string{"  t1: 1ms\n  t2: 1ms\n"}, []string{"  t1: 999us\n"}, false},
		{"t2", []string{"  t1: 1ms\n  t2: 1ms\n"}, []string{"  t1: 1ms\n  t2: 999us\n"}, false},
		{"retry_time", []string{"  t1: 1ms\n  retry_time: 1ms\n"}, []string{"  retry_time: 999us\n", "  retry_mode: count\n  retry_time: 500us\n"}, false},
		{"backoff_base", []string{"  backoff_base: 1ms\n  backoff_max: 1ms\n"}, []string{"  backoff_base: 999us\n"}, false},
		{"backoff_max", []string{"  backoff_base: 1ms\n  backoff_max: 1ms\n"}, []string{"  backoff_base: 1ms\n  backoff_max: 999us\n"}, false},
		{"keepalive_interval", []string{"  keepalive_interval: 0s\n", "  keepalive_interval: 1ms\n"}, []string{"  keepalive_interval: 999us\n", "  keepalive_interval: -1s\n"}, false},
		{"nat_keepalive_interval", []string{"  nat_keepalive_interval: 0s\n", "  nat_keepalive_interval: 1s\n", "  nat_keepalive_interval: 1h\n"},
			[]string{"  nat_keepalive_interval: 999ms\n", "  nat_keepalive_interval: 1h0m0.001s\n", "  nat_keepalive_interval: -1s\n"}, false},
		{"nat_keepalive_mode", []string{"  nat_keepalive_mode: auto\n", "  nat_keepalive_mode: crlf\n"}, []string{"  nat_keepalive_mode: stun\n"}, false},
		{"max_call_duration", []string{"  max_call_duration: 1s\n"}, []string{"  max_call_duration: 999ms\n"}, false},
		{"max_incoming_calls", []string{"  max_incoming_calls: 0\n", "  max_incoming_calls: 1000\n"}, []string{"  max_incoming_calls: -1\n", "  max_incoming_calls: 1001\n"}, false},
		{"enable_failback", []string{"  enable_failback: 0\n", "  enable_failback: 1\n"}, []string{"  enable_failback: 2\n", "  enable_failback: -1\n"}, false},
		{"timer_spread", []string{"  timer_spread: 0\n", "  timer_spread: 50\n"}, []string{"  timer_spread: -1\n", "  timer_spread: 51\n"}, false},
		{"deregister_backup_after_failback", []string{"  deregister_backup_after_failback: 1\n"}, []string{"  deregister_backup_after_failback: 2\n"}, false},
		{"unavailable_codes", []string{"  unavailable_codes: [300, 699]\n"}, []string{"  unavailable_codes: [299]\n", "  unavailable_codes: [700]\n", "  unavailable_codes: []\n"}, false},
		{"servers[0].register_on_enable", []string{", register_on_enable: 0", ", register_on_enable: 1"}, []string{", register_on_enable: 2", ", register_on_enable: -1"}, true},
		{"only_signal_with_registered", []string{"  only_signal_with_registered: 0\n", "  only_signal_with_registered: 1\n"},
			[]string{"  only_signal_with_registered: 2\n", "  only_signal_with_registered: -1\n"}, false},
	} {
		src := func(v string) string {
			if tc.inServer {
				return line("", v)
			}
			return line(v, "")
		}
		for _, v := range tc.ok {
			if _, err := settings.Parse([]byte(src(v))); err != nil {
				t.Errorf("%s: %q refused: %v", tc.field, v, err)
			}
		}
		for _, v := range tc.bad {
			_, err := settings.Parse([]byte(src(v)))
			if err == nil || !strings.Contains(err.Error(), "."+tc.field+": ") {
				t.Errorf("%s: %q not refused for that field: %v", tc.field, v, err)
			}
		}
	}
	for _, v := range []string{"max_calls: 100000\n", "max_calls: 1\n"} {
		if _, err := settings.Parse([]byte(v + line("", ""))); err != nil {
			t.Errorf("%q refused: %v", v, err)
		}
	}
	for _, v := range []string{"max_calls: 100001\n", "max_calls: -1\n"} {
		if _, err := settings.Parse([]byte(v + line("", ""))); err == nil {
			t.Errorf("%q accepted", v)
		}
	}
	for _, v := range []string{"pacing: {rate: 0}\n", "pacing: {rate: 0.5, burst: 1}\n", "pacing: {rate: 1000000, burst: 1000000}\n"} {
		if _, err := settings.Parse([]byte(v + line("", ""))); err != nil {
			t.Errorf("%q refused: %v", v, err)
		}
	}
	for v, field := range map[string]string{"pacing: {rate: -1, burst: 5}\n": "pacing.rate", "pacing: {rate: 1000001, burst: 5}\n": "pacing.rate",
		"pacing: {rate: .nan, burst: 5}\n": "pacing.rate", "pacing: {rate: 10}\n": "pacing.burst", "pacing: {rate: 10, burst: -3}\n": "pacing.burst",
		"pacing: {rate: 10, burst: 5, bucket: 3}\n": "bucket"} {
		if _, err := settings.Parse([]byte(v + line("", ""))); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%q: got %v, want an error naming %s", v, err, field)
		}
	}
}

// TestSettingsErrorsHavePlaces: item 7 of the settings issue. A misspelt
// field is named with its line and column and a suggestion, not a Go type;
// YAML errors carry their real line; an empty file says so.
func TestSettingsErrorsHavePlaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lines.yaml")
	for _, tc := range []struct{ src, want string }{
		{"lines:\n  - user: a\n    pasword: x\n    servers: [{addr: h1}, {addr: h2}]\n", path + `:3:5: unknown field "pasword" (did you mean "password"?)`},
		{"lines:\n  - user: a\n    servers: [{adr: h1}, {addr: h2}]\n", path + `:3:16: unknown field "adr" (did you mean "addr"?)`},
		{"lines:\n  - user: a\n    servers:\n      - addr: h1\n     - addr: h2\n", path + ":5:1: "},
		{"lines:\n  - user: a\n    signal_retry_counts: three\n    servers: [{addr: h1}, {addr: h2}]\n", path + ":3:26: lines[0].signal_retry_counts: cannot unmarshal"},
		{"", "the settings file is empty"},
		{"# only a comment\n", "the settings file is empty"},
	} {
		if err := os.WriteFile(path, []byte(tc.src), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := settings.Load(path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.src, err, tc.want)
		}
	}
}

// TestWarningForNoPassword: a line without a password loads, with a warning.
func TestWarningForNoPassword(t *testing.T) {
	c, err := settings.Parse([]byte("lines:\n- name: door\n  user: a\n  servers: [{addr: h1}, {addr: h2}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0], "line 1 (door): no password") {
		t.Errorf("warnings %q", w)
	}
}

// TestWebListenStaysLocal: item 4. The pages listen on loopback unless
// allow_remote says otherwise, and then only over TLS; a metrics token is
// long enough not to be guessed.
func TestWebListenStaysLocal(t *testing.T) {
	const hash = `"$2a$10$fRpAHtWunpZrjF/LAjQoLOfqyaTYmje6LCMWSLcWvV4xHyAQmlMBO"`
	lines := "lines:\n- user: a\n  servers: [{addr: h1}, {addr: h2}]\n"
	for web, want := range map[string]string{
		"{listen: 127.0.0.1:8080, password_hash: " + hash + "}":                                                    "",
		"{listen: \"[::1]:8080\", password_hash: " + hash + "}":                                                    "",
		"{listen: localhost:8080, password_hash: " + hash + "}":                                                    "",
		"{listen: 0.0.0.0:8080, password_hash: " + hash + "}":                                                      "web.listen: 0.0.0.0:8080 is not a loopback address",
		"{listen: 0.0.0.0:8080, allow_remote: true, password_hash: " + hash + "}":                                  "web.tls_cert: allow_remote serves the pages over TLS only",
		"{listen: 0.0.0.0:8080, allow_remote: true, tls_cert: c.pem, tls_key: k.pem, password_hash: " + hash + "}": "",
		"{listen: 127.0.0.1:8080, metrics_token: short, password_hash: " + hash + "}":                              "web.metrics_token: 5 characters",
		"{listen: 127.0.0.1:8080, metrics_token: 0123456789abcdef, password_hash: " + hash + "}":                   "",
	} {
		_, err := settings.Parse([]byte("web: " + web + "\n" + lines))
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", web, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: got %v, want %q", web, err, want)
		}
	}
}

// TestSettingsRoundTrip: R15. A file drawn at random (any subset of the
// settings, each at a value in its range) loads, saves and loads back to the
// same effective settings, and the save writes back no field that was left
// out (a Submit that changes nothing re-registers nothing).
func TestSettingsRoundTrip(t *testing.T) {
	dir, n := t.TempDir(), 0
	rapid.Check(t, func(t *rapid.T) {
		n++
		var b strings.Builder
		b.WriteString("lines:\n")
		var left []string
		for i := range rapid.IntRange(1, 3).Draw(t, "lines") {
			fmt.Fprintf(&b, "- name: l%d\n  user: \"10%02d\"\n  password: pw\n  servers:\n", i, i)
			for range rapid.IntRange(2, 4).Draw(t, "servers") {
				b.WriteString("  - addr: 127.0.0.1\n")
				if rapid.Bool().Draw(t, "port") {
					fmt.Fprintf(&b, "    port: %d\n", rapid.IntRange(1, 65535).Draw(t, "port_v"))
				}
				if rapid.Bool().Draw(t, "transport") {
					fmt.Fprintf(&b, "    transport: %d\n", rapid.SampledFrom([]int{0, 1, 3}).Draw(t, "transport_v"))
				}
			}
			for _, f := range []struct{ key, val string }{
				{"enable_failback", strconv.Itoa(rapid.IntRange(0, 1).Draw(t, "ef"))},
				{"failback_interval", strconv.Itoa(rapid.IntRange(1, 86400).Draw(t, "fi"))},
				{"signal_retry_counts", strconv.Itoa(rapid.IntRange(1, 10).Draw(t, "src"))},
				{"keepalive_interval", fmt.Sprintf("%dms", rapid.IntRange(0, 60000).Draw(t, "ka"))},
				{"unavailable_codes", fmt.Sprintf("[%d]", rapid.IntRange(500, 599).Draw(t, "uc"))},
				{"max_incoming_calls", strconv.Itoa(rapid.IntRange(0, 1000).Draw(t, "mic"))},
			} {
				if rapid.Bool().Draw(t, f.key) {
					fmt.Fprintf(&b, "  %s: %s\n", f.key, f.val)
				} else {
					left = append(left, f.key)
				}
			}
		}
		first, err := settings.Parse([]byte(b.String()))
		if err != nil {
			t.Fatalf("a file within the ranges is refused: %v\n%s", err, b.String())
		}
		path := filepath.Join(dir, fmt.Sprintf("lines-%d.yaml", n))
		if err := settings.Save(path, first); err != nil {
			t.Fatal(err)
		}
		saved, _ := os.ReadFile(path)
		second, err := settings.Load(path)
		if err != nil {
			t.Fatalf("the saved file does not load: %v\n%s", err, saved)
		}
		for i := range first.Lines {
			if !reflect.DeepEqual(first.Lines[i].Defaults(), second.Lines[i].Defaults()) {
				t.Fatalf("line %d changed through a save:\n%s", i+1, saved)
			}
		}
		if len(first.Lines) == 1 {
			for _, k := range left {
				if strings.Contains(string(saved), k+":") {
					t.Fatalf("the save wrote %s, which the file left out:\n%s", k, saved)
				}
			}
		}
	})
}

// TestSaveSurvivesAKill: R15, a crash mid-save loses neither the old nor the
// new settings. A child process saves two configs in turn as fast as it can
// and is killed (SIGKILL) at random moments; the file then always loads, and
// is one of the two, whole.
func TestSaveSurvivesAKill(t *testing.T) {
	if path := os.Getenv("SIPFAILOVER_SAVE_LOOP"); path != "" {
		saveForever(path) // the child
		return
	}
	path := filepath.Join(t.TempDir(), "lines.yaml")
	if err := settings.Save(path, saveLoopConfig(0)); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSaveSurvivesAKill$")
		cmd.Env = append(os.Environ(), "SIPFAILOVER_SAVE_LOOP="+path)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(20+rng.IntN(80)) * time.Millisecond) // a kill at a random moment of the loop
		cmd.Process.Kill()
		cmd.Wait()
		c, err := settings.Load(path)
		if err != nil {
			t.Fatalf("kill %d: the file does not load: %v", i+1, err)
		}
		if name := c.Lines[0].Name; name != "zero" && name != "one" {
			t.Fatalf("kill %d: the file holds line %q", i+1, name)
		}
	}
}

// saveLoopConfig is one of the two configs the child saves in turn.
func saveLoopConfig(i int) settings.Config {
	name := []string{"zero", "one"}[i%2]
	return settings.Config{Lines: []settings.LineConfig{{Name: name, User: "1001", Password: strings.Repeat("p", 4000),
		Servers: []settings.ServerConfig{{Addr: "10.0.0.1"}, {Addr: "10.0.0.2"}}}}}
}

func saveForever(path string) {
	for i := 0; ; i++ {
		settings.Save(path, saveLoopConfig(i))
	}
}
