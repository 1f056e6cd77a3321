package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCaptureSettingsOfAProxiedLine: a line behind outbound proxies is
// judged on the wire by where it sends, its proxies, not its registrar
// (R22), whose hosts name the registrar a REGISTER goes to; a proxy given
// by name is named by its place in the file.
func TestCaptureSettingsOfAProxiedLine(t *testing.T) {
	file := writeLines(t, `lines:
  - name: sbc
    user: "1001"
    servers: [{addr: 127.0.0.1, port: 5090}]
    outbound_proxies: [{addr: 127.0.0.2, port: 5070}, {addr: 127.0.0.3, port: 5072}]
  - name: two
    user: "1003"
    domain: example.test
    servers: [{addr: reg1.example.test}, {addr: "::1"}]
    outbound_proxies: [{addr: 127.0.0.2, port: 5070}]
  - name: named
    user: "1002"
    servers: [{addr: 127.0.0.1, port: 5090}]
    outbound_proxies: [{addr: 127.0.0.2}, {addr: sbc2.example.test}]
`)
	s, err := lineCaptureSettings(file, "sbc")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(s.Servers); got != "[127.0.0.2:5070 127.0.0.3:5072]" {
		t.Errorf("servers on the wire %s, want the two proxies", got)
	}
	if got := fmt.Sprint(s.Registrars); got != "[127.0.0.1:5090]" {
		t.Errorf("registrars %s, want the one behind the proxies", got)
	}
	if s, err := lineCaptureSettings(file, "two"); err != nil || fmt.Sprint(s.Registrars) != "[reg1.example.test:5060 [::1]:5060]" {
		t.Errorf("two registrars: %v, %v", s.Registrars, err)
	}
	fs := flag.NewFlagSet("verify-capture", flag.ContinueOnError)
	p := addPhoneFlags(fs, true)
	if err := fs.Parse([]string{"-servers", "127.0.0.2:5060", "-registrars", "reg1.example.test, [::1], [::1]:5070"}); err != nil {
		t.Fatal(err)
	}
	if s, err := p.settings(); err != nil || fmt.Sprint(s.Registrars) != "[reg1.example.test ::1 [::1]:5070]" {
		t.Errorf("-registrars: %v, %v", s.Registrars, err)
	}
	if _, err := lineCaptureSettings(file, "named"); err == nil || !strings.Contains(err.Error(), `outbound_proxies[1]: "sbc2.example.test" is a name`) {
		t.Errorf("a proxy by name: %v", err)
	}
}

// TestCaptureSettingsOfR23: a line's register_on_enable and
// only_signal_with_registered reach verify-capture from the settings file,
// by server in the order of its servers; the flags refuse what is not 0 or
// 1, and more values than servers.
func TestCaptureSettingsOfR23(t *testing.T) {
	file := writeLines(t, `lines:
  - name: desk
    user: "1001"
    only_signal_with_registered: 0
    servers: [{addr: 127.0.0.2}, {addr: 127.0.0.3, register_on_enable: 0}]
`)
	s, err := lineCaptureSettings(file, "desk")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Shared, []bool{false, true}) || !s.SignalUnregistered {
		t.Errorf("shared %v, signal unregistered %v: want [false true] and true", s.Shared, s.SignalUnregistered)
	}
	good := captures + "good.pcap"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-servers", "127.0.0.2:5060,127.0.0.3:5060", "-register-on-enable", "1,2"}, `server 2's "2" is not 0 or 1`},
		{[]string{"-servers", "127.0.0.2:5060", "-register-on-enable", "1,0"}, "2 values for 1 servers"},
		{[]string{"-servers", "127.0.0.2:5060", "-only-signal-with-registered", "yes"}, `-only-signal-with-registered "yes": 0 or 1`},
		{[]string{"-servers", "127.0.0.2:5060", "-registrars", "reg1.test,"}, `-registrars "reg1.test,": an empty host`},
		{[]string{"-servers", "127.0.0.2:5060", "-registrars", "reg 1.test"}, `-registrars: "reg 1.test" is no HOST or HOST:PORT`},
	} {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"verify-capture", good}, c.args...), &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, %q; want exit 2 and %q", c.args, code, stderr.String(), c.want)
		}
	}
}

// writeLines writes a settings file of src and returns its path.
func writeLines(t *testing.T, src string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "lines.yaml")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}
