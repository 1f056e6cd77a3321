package web

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sipfailover/sipfailover/fsm"
	"github.com/sipfailover/sipfailover/runtime"
)

// Metrics counts what the lines do, for Prometheus at /metrics, in its
// text format: per line, the state it is in, its failovers and failbacks,
// the time spent in each state, and request failures by the event that
// reported them.
type Metrics struct {
	now func() time.Time

	mu    sync.Mutex
	lines map[string]*lineMetrics
}

type lineMetrics struct {
	state     string
	since     time.Time
	inState   map[string]time.Duration
	failovers int
	failbacks int
	failures  map[string]int
}

// failureEvents are the line events that report a failed request.
var failureEvents = func() []string {
	var out []string
	for _, e := range runtime.FailureEvents() {
		out = append(out, e.String())
	}
	return out
}()

// NewMetrics returns empty counters on the clock now (nil: time.Now).
func NewMetrics(now func() time.Time) *Metrics {
	if now == nil {
		now = time.Now
	}
	return &Metrics{now: now, lines: map[string]*lineMetrics{}}
}

// Observe counts one transition; the agent's watcher calls it.
func (m *Metrics) Observe(t runtime.Transition) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.lines[t.Line]
	if l == nil {
		l = &lineMetrics{state: t.From, since: t.At, inState: map[string]time.Duration{}, failures: map[string]int{}}
		m.lines[t.Line] = l
	}
	if slices.Contains(failureEvents, t.Event) {
		l.failures[t.Event]++
	}
	if t.From == t.To {
		return
	}
	l.inState[l.state] += t.At.Sub(l.since)
	l.state, l.since = t.To, t.At
	switch {
	case t.To == fsm.LineStateBackupRegistered.String() && t.From == fsm.LineStateRetrying.String():
		l.failovers++
	case t.To == fsm.LineStatePrimaryRegistered.String() && t.From == fsm.LineStateProbing.String():
		l.failbacks++
	}
}

// lineStates lists the model's states; String names the ones past the last
// as LineState(n).
func lineStates() []string {
	var out []string
	for s := fsm.LineState(1); !strings.HasPrefix(s.String(), "LineState("); s++ {
		out = append(out, s.String())
	}
	return out
}

func (m *Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	names := make([]string, 0, len(m.lines))
	for n := range m.lines {
		names = append(names, n)
	}
	slices.Sort(names)
	states := lineStates()
	now := m.now()
	metric := func(name, kind, help string, each func(line string, l *lineMetrics)) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, kind)
		for _, n := range names {
			each(n, m.lines[n])
		}
	}
	metric("sipfailover_line_state", "gauge", "1 for the state each line is in, 0 for the others (R14).", func(n string, l *lineMetrics) {
		for _, s := range states {
			v := 0
			if s == l.state {
				v = 1
			}
			fmt.Fprintf(w, "sipfailover_line_state{line=%q,state=%q} %d\n", n, s, v)
		}
	})
	metric("sipfailover_failovers_total", "counter", "Times a line registered on a lower-priority server after the servers before it failed (R5).", func(n string, l *lineMetrics) {
		fmt.Fprintf(w, "sipfailover_failovers_total{line=%q} %d\n", n, l.failovers)
	})
	metric("sipfailover_failbacks_total", "counter", "Times a line's probe found the primary back and the line moved there (R10).", func(n string, l *lineMetrics) {
		fmt.Fprintf(w, "sipfailover_failbacks_total{line=%q} %d\n", n, l.failbacks)
	})
	metric("sipfailover_state_seconds_total", "counter", "Time each line has spent in each state.", func(n string, l *lineMetrics) {
		for _, s := range states {
			d := l.inState[s]
			if s == l.state {
				d += now.Sub(l.since)
			}
			fmt.Fprintf(w, "sipfailover_state_seconds_total{line=%q,state=%q} %g\n", n, s, d.Seconds())
		}
	})
	metric("sipfailover_request_failures_total", "counter", "Failed requests of each line, by the event that reported the failure (R1).", func(n string, l *lineMetrics) {
		for _, e := range failureEvents {
			fmt.Fprintf(w, "sipfailover_request_failures_total{line=%q,reason=%q} %d\n", n, e, l.failures[e])
		}
	})
}
