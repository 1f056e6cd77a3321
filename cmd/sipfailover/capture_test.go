package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const captures = "../../internal/capture/testdata/"

// TestVerifyCapture: the command on a stand-in phone's capture, the file
// before or after the flags: exit 1 with the violation and its frames, the
// JSON report, and the timeline picture.
func TestVerifyCapture(t *testing.T) {
	picture := filepath.Join(t.TempDir(), "timeline.png")
	var stdout, stderr bytes.Buffer
	code := run([]string{"verify-capture", captures + "skips_primary.pcap", "-servers", "127.0.0.2:5060,127.0.0.3:5060",
		"-failback-interval", "60s", "-picture", picture}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (a violation)\n%s%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{"line 1001@example.test: 2 transactions", "I3   VIOLATED", "I3 at 10s, frames 3: 1001@example.test: a REGISTER to server 2 without server 1 failing first",
		"I9   NOT DECIDABLE", "frames a second"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, stdout.String())
		}
	}
	if png, err := os.ReadFile(picture); err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("no PNG timeline: %v", err)
	}

	stdout.Reset()
	code = run([]string{"verify-capture", "-servers", "127.0.0.2:5060,127.0.0.3:5060", "-failback-interval", "60s", "-json", captures + "good.pcap"}, &stdout, &stderr)
	var r struct {
		Messages int
		Verdicts []struct{ ID, Status string }
	}
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil || code != 0 || r.Messages != 22 || len(r.Verdicts) != 12 {
		t.Fatalf("exit %d, %v: %+v", code, err, r)
	}
}

// TestVerifyCaptureRefuses: bad flags and files get a message that names
// the flag, and no report.
func TestVerifyCaptureRefuses(t *testing.T) {
	notCapture := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(notCapture, []byte("hello, this is no capture at all"), 0o644)
	good := captures + "good.pcap"
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{good}, 2, "-servers: give the phone's servers"},
		{[]string{good, "-servers", "primary:5060"}, 2, `-servers: "primary:5060" is not ADDR:PORT`},
		{[]string{good, "-servers", "127.0.0.1:5060", "-t1", "0s"}, 2, "-t1 0s"},
		{[]string{good, "-servers", "127.0.0.1:5060", "-retry-counts", "0"}, 2, "-retry-counts 0: 1 to 64"},
		{[]string{good, "-servers", "127.0.0.1:5060", "-retry-counts", "65"}, 2, "-retry-counts 65: 1 to 64"},
		{[]string{good, "-servers", "127.0.0.1:5060", "-invite-retry-counts", "65"}, 2, "-invite-retry-counts 65: 0 to 64"},
		{[]string{good, "-servers", nServers(9)}, 2, "-servers: 9 servers; a line has at most 8"},
		{[]string{good, "-servers", "127.0.0.1:5060", "-failback", "maybe"}, 2, `-failback "maybe": on or off`},
		{[]string{good, "-servers", "127.0.0.1:5060", "-transport", "tls"}, 2, "TLS is encrypted on the wire"},
		{[]string{good, "-servers", "127.0.0.1:5060", "-unavailable-codes", "200"}, 2, `"200" is not a status code of 300-699`},
		{[]string{good, "-servers", "127.0.0.1:5060", "-picture", "x.gif"}, 2, "an .svg or .png file"},
		{[]string{"-servers", "127.0.0.1:5060"}, 2, "missing argument"},
		{[]string{good, "-servers", "127.0.0.1:5060", "-failback-mode", "sometimes"}, 2, `-failback-mode "sometimes": duration, registration, new_requests or dns_ttl`},
		{[]string{good, "-servers", "127.0.0.1:5060", "-failback-when", "never"}, 2, `-failback-when "never": idle or always`},
		{[]string{good, "-servers", "127.0.0.1:5060", "-backoff-max", "-1s"}, 2, "-backoff-max -1s: 0 or more"},
		{[]string{good, "-servers", "127.0.0.1:5060", "-timer-spread", "51"}, 2, "-timer-spread 51: 0 to 50"},
		{[]string{good, "-servers", "127.0.0.1:5060", "-timer-spread", "-1"}, 2, "-timer-spread -1: 0 to 50"},
		{[]string{good, "-servers", "127.0.0.1:5060", "-max-memory", "0"}, 2, "-max-memory 0: 1 to 1073741824 MiB"},
		{[]string{good, "-servers", "127.0.0.1:5060", "-max-memory", "1073741825"}, 2, "-max-memory 1073741825: 1 to 1073741824 MiB"},
		// Unusable input exits 2, as a bad flag does: 1 means a violation.
		{[]string{notCapture, "-servers", "127.0.0.1:5060"}, 2, "not a pcap or pcapng capture"},
		{[]string{"/nonexistent.pcap", "-servers", "127.0.0.1:5060"}, 2, "no such file"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"verify-capture"}, c.args...), &stdout, &stderr)
		if code != c.code || !strings.Contains(stderr.String(), c.want) || strings.Contains(stdout.String(), "I1 ") {
			t.Errorf("%v: exit %d, %q; want exit %d and %q", c.args, code, stderr.String(), c.code, c.want)
		}
	}
}

// nServers is a -servers list of n loopback servers, the stand-in phone's
// two first.
func nServers(n int) string {
	list := []string{"127.0.0.2:5060", "127.0.0.3:5060"}
	for i := len(list); i < n; i++ {
		list = append(list, fmt.Sprintf("127.0.0.%d:5060", i+2))
	}
	return strings.Join(list[:n], ",")
}

// TestVerifyCaptureBounds: the largest values the flags take are taken,
// and the smallest -max-memory.
func TestVerifyCaptureBounds(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"verify-capture", captures + "good.pcap", "-servers", nServers(8), "-retry-counts", "64", "-invite-retry-counts", "64",
		"-failback-interval", "60s", "-timer-spread", "50", "-max-memory", "1"}, &stdout, &stderr)
	if code == 2 || stderr.Len() > 0 || !strings.Contains(stdout.String(), "server 8: 127.0.0.9:5060") {
		t.Errorf("exit %d, %q:\n%s", code, stderr.String(), stdout.String())
	}
}

// deskSettings is a settings file with the stand-in phone's line of
// good.pcap ("desk", user, Failback Interval 60 s) and another line.
func deskSettings(t *testing.T, user string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "lines.yaml")
	yaml := `lines:
  - name: desk
    user: "` + user + `"
    password: secret
    domain: example.test
    failback_interval: 60
    servers:
      - {addr: 127.0.0.2, port: 5060}
      - {addr: 127.0.0.3, port: 5060}
  - name: lobby
    user: "2001"
    password: secret
    servers:
      - {addr: sip1.example.test}
      - {addr: sip2.example.test}
`
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// verdictsOf runs verify-capture with -json and returns its exit code and
// each invariant's status.
func verdictsOf(t *testing.T, args ...string) (int, map[string]string, []byte) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(append(append([]string{"verify-capture"}, args...), "-json"), &stdout, &stderr)
	var r struct {
		Verdicts []struct{ ID, Status string }
	}
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("%v: exit %d, %v\n%s", args, code, err, stderr.String())
	}
	status := map[string]string{}
	for _, v := range r.Verdicts {
		status[v.ID] = v.Status
	}
	return code, status, stdout.Bytes()
}

// TestVerifyCaptureSettingsFile: -settings -line judges the capture by the
// line's own settings, as the same flags would; a flag given as well wins;
// the line's address of record picks the phone.
func TestVerifyCaptureSettingsFile(t *testing.T) {
	good := captures + "good.pcap"
	file := deskSettings(t, "1001")
	codeFlags, byFlags, _ := verdictsOf(t, good, "-servers", "127.0.0.2:5060,127.0.0.3:5060", "-failback-interval", "60s")
	codeFile, byFile, _ := verdictsOf(t, good, "-settings", file, "-line", "desk")
	if codeFile != codeFlags || fmt.Sprint(byFile) != fmt.Sprint(byFlags) || byFile["I1"] != "held" {
		t.Errorf("-settings: exit %d %v; the same by flags: exit %d %v", codeFile, byFile, codeFlags, byFlags)
	}
	// A flag beats the file: with servers where the phone sent nothing,
	// nothing is decidable.
	_, byOverride, out := verdictsOf(t, good, "-settings", file, "-line", "desk", "-servers", "127.0.0.9:5060")
	if byOverride["I1"] == "held" || !bytes.Contains(out, []byte(`"Addr": "127.0.0.9:5060"`)) {
		t.Errorf("-servers did not override the file:\n%s", out)
	}
	// The line is 1002@example.test: 1001 in the capture is another phone,
	// listed and not judged.
	_, byOther, out := verdictsOf(t, good, "-settings", deskSettings(t, "1002"), "-line", "desk")
	if byOther["I1"] == "held" || !bytes.Contains(out, []byte(`"AOR": "1001@example.test"`)) || bytes.Contains(out, []byte(`"Registrations"`)) {
		t.Errorf("another line's capture was judged, or its phone not listed:\n%s", out)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-settings", file}, "has 2 lines: pick one with -line (desk, lobby)"},
		{[]string{"-settings", file, "-line", "hall"}, `no line named "hall" (it has desk, lobby)`},
		{[]string{"-settings", file, "-line", "lobby"}, `"sip1.example.test" is a name`},
		{[]string{"-settings", "/nonexistent.yaml"}, "no such file"},
		{[]string{"-line", "desk", "-servers", "127.0.0.2:5060"}, "-line desk: give the settings file"},
		{[]string{"-servers", "127.0.0.2:5060", "-phone", "desk phone"}, `phone "desk phone"`},
	} {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"verify-capture", good}, c.args...), &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), c.want) || stdout.Len() > 0 {
			t.Errorf("%v: exit %d, %q; want exit 2 and %q", c.args, code, stderr.String(), c.want)
		}
	}
}

// TestVerifyCapturePhone: -phone by address of record or by address judges
// that phone only and lists the others.
func TestVerifyCapturePhone(t *testing.T) {
	good := captures + "good.pcap"
	servers := []string{good, "-servers", "127.0.0.2:5060,127.0.0.3:5060", "-failback-interval", "60s"}
	for _, c := range []struct {
		phone  string
		judged bool
	}{
		{"1001@example.test", true}, {"sip:1001@EXAMPLE.test", true}, {"127.0.0.1", true},
		{"1002@example.test", false}, {"127.0.0.5", false}, {"127.0.0.1:5999", false},
	} {
		_, by, out := verdictsOf(t, append(servers, "-phone", c.phone)...)
		if judged := by["I1"] == "held"; judged != c.judged {
			t.Errorf("-phone %s: judged %v, want %v:\n%s", c.phone, judged, c.judged, out)
		}
		if listed := bytes.Contains(out, []byte(`"Others"`)); listed == c.judged {
			t.Errorf("-phone %s: the capture's phone listed as another: %v:\n%s", c.phone, listed, out)
		}
	}
}
