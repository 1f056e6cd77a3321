package runtime_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/runtime"
)

// TestNeverIsAbsent: a time that has not happened (a line that never
// failed, a call not answered or not ended) is left out of the JSON of
// the status and the call API, not written as 0001-01-01T00:00:00Z.
func TestNeverIsAbsent(t *testing.T) {
	for _, v := range []any{runtime.Status{Since: time.Now()}, runtime.CallInfo{Started: time.Now()}} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		for _, never := range []string{"0001-01-01", `"last_failure_at"`, `"answered"`, `"ended"`} {
			if strings.Contains(string(b), never) {
				t.Errorf("%T: %s holds %s", v, b, never)
			}
		}
	}
	b, _ := json.Marshal(runtime.CallInfo{Ended: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)})
	if !strings.Contains(string(b), `"ended":"2026-12-07T09:00:00Z"`) {
		t.Errorf("an ended call: %s", b)
	}
}
