package web

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/runtimetest"
)

// FuzzLineForm submits the Line page with any values in its fields (the
// input is the field values, separated by NUL). The page never fails with
// a 5xx, and what it applies is settings that validate and whose every
// line an agent can start: a bad form changes nothing.
func FuzzLineForm(f *testing.F) {
	f.Add(strings.Join([]string{"10.0.0.1", "5060", "3600", "0", "backup.example.com", "5070", "600", "1", "1", "900", "4"}, "\x00"))
	f.Add(strings.Join([]string{"", "0", "0", "2", "<script>", "65536", "-1", "9", "2", "9223372037", "11"}, "\x00"))
	f.Add(strings.Join([]string{"h", "1", "10", "3", "h2", "65535", "604800", "3", "0", "86400", "10"}, "\x00"))
	ts := newTestSite(f)
	csrf := ts.login(f)
	f.Fuzz(func(t *testing.T, in string) {
		vals := strings.Split(in, "\x00")
		form := goodForm(csrf)
		for i, fld := range formFields {
			if i < len(vals) {
				form.Set(fld.name, vals[i])
			}
		}
		before := len(ts.applied)
		res, _ := ts.post(t, "/line", form)
		if res.StatusCode >= http.StatusInternalServerError {
			t.Fatalf("the form answered %d", res.StatusCode)
		}
		ts.mu.Lock()
		defer ts.mu.Unlock()
		if len(ts.applied) == before {
			return
		}
		next := ts.applied[len(ts.applied)-1]
		if err := next.Validate(); err != nil {
			t.Fatalf("applied settings that do not validate: %v", err)
		}
		agent := runtime.NewAgent(runtimetest.NewSimNetwork(runtimetest.NewVirtualClock(ts.now), 0))
		for _, l := range next.Lines {
			if _, err := agent.AddLine(l); err != nil {
				t.Fatalf("applied a line that cannot start: %v", err)
			}
		}
	})
}
