package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sipfailover/sipfailover/runtime/runtimetest"
)

// TestCallAndHangup: `sipfailover call` places a call from a running agent
// through its primary to a far end, and `sipfailover hangup` ends it; bad
// input is refused with the field named.
func TestCallAndHangup(t *testing.T) {
	loc := runtimetest.NewLocation()
	var rs []*runtimetest.Registrar
	for _, name := range []string{"p", "b"} {
		r := &runtimetest.Registrar{Name: name, User: "1001", Password: "pw", Users: map[string]string{"1002": "far"}, Location: loc}
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Stop)
		rs = append(rs, r)
	}
	phone := &runtimetest.Phone{User: "1002", Password: "far"}
	if err := phone.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(phone.Stop)
	if err := phone.Register(rs[0].Addr); err != nil {
		t.Fatal(err)
	}
	addr, _ := runAgent(t, settings([2]int{rs[0].Port(), rs[1].Port()}))
	var out, errOut bytes.Buffer
	eventually(t, "the agent answers, its line registered", func() bool {
		return rs[0].Registered() && statusCmd([]string{"-addr", addr}, &out, &errOut) == 0
	})
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"-addr", addr, "-line", "7", "sip:1002@127.0.0.1"}, "line: line 7: the settings have lines 1 to 1"},
		{[]string{"-addr", addr, "-line", "nope", "sip:1002@127.0.0.1"}, `line: no line "nope"`},
		{[]string{"-addr", addr, "sip:"}, "to: target"},
	} {
		errOut.Reset()
		if code := callCmd(bad.args, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), bad.want) {
			t.Errorf("call %v exited %d with %q, want 1 and %q", bad.args, code, errOut.String(), bad.want)
		}
	}

	out.Reset()
	if code := callCmd([]string{"-addr", addr, "-line", "1", "sip:1002@127.0.0.1"}, &out, &errOut); code != 0 {
		t.Fatalf("call exited %d: %s %s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "confirmed through server 0") {
		t.Fatalf("call printed %q, want it confirmed through the primary", out.String())
	}
	id := strings.Fields(out.String())[1]
	eventually(t, "the far end's call is up (its ACK may be on the way)", func() bool { return phone.Call(id) == "up" })
	out.Reset()
	if code := hangupCmd([]string{"-addr", addr}, &out, &errOut); code != 0 {
		t.Fatalf("hangup exited %d: %s %s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "ended") {
		t.Fatalf("hangup printed %q, want the call ended", out.String())
	}
	if st := phone.Call(id); st != "ended" {
		t.Fatalf("the far end's call is %q, want ended", st)
	}
}
