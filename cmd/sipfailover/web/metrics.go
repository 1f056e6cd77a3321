package web

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

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

// Forget drops a removed line's series, so that they do not stay for ever.
func (m *Metrics) Forget(line string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.lines, line)
}

// Handler serves the metrics in Prometheus' text format, with the Go
// runtime's and the process's own (client_golang's collectors); when
// counters is set, what the agent dropped at its edge (I11); when lines
// is set, each line's flow keep-alives (RFC 5626 4.4).
func (m *Metrics) Handler(counters func() runtime.Counters, lines func() []runtime.Status) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&lineCollector{m: m}, &edgeCollector{counters: counters}, &flowCollector{lines: lines})
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

var (
	descState = prometheus.NewDesc("sipfailover_line_state", "1 for the state each line is in, 0 for the others (R14).",
		[]string{"line", "state"}, nil)
	descFailovers = prometheus.NewDesc("sipfailover_failovers_total",
		"Times a line registered on a lower-priority server after the servers before it failed (R5).", []string{"line"}, nil)
	descFailbacks = prometheus.NewDesc("sipfailover_failbacks_total",
		"Times a line's probe found the primary back and the line moved there (R10).", []string{"line"}, nil)
	descInState = prometheus.NewDesc("sipfailover_state_seconds_total", "Time each line has spent in each state.",
		[]string{"line", "state"}, nil)
	descFailures = prometheus.NewDesc("sipfailover_request_failures_total",
		"Failed requests of each line, by the event that reported the failure (R1).", []string{"line", "reason"}, nil)
	descDropped = prometheus.NewDesc("sipfailover_dropped_messages_total",
		"Messages from servers dropped or refused before any line saw them, by why (I11).", []string{"why"}, nil)
	descPanics = prometheus.NewDesc("sipfailover_contained_panics_total",
		"Messages whose handling panicked and was stopped there; each one is a bug (I11).", nil, nil)
	descRejectedCalls = prometheus.NewDesc("sipfailover_rejected_calls_total",
		"Incoming calls answered 486 for a call limit (I11).", nil, nil)
	descFlowSent = prometheus.NewDesc("sipfailover_flow_keepalives_total",
		"Flow keep-alives a line sent (RFC 5626 4.4): packets, no SIP transaction.", []string{"line"}, nil)
	descFlowLost = prometheus.NewDesc("sipfailover_flow_keepalives_lost_total",
		"Flow keep-alives left unanswered by a server that had answered one before (R1).", []string{"line"}, nil)
	descFlowRTT = prometheus.NewDesc("sipfailover_flow_keepalive_rtt_seconds",
		"The round trip of a line's last answered flow keep-alive; absent until one is answered.", []string{"line"}, nil)
	descFlowAnswered = prometheus.NewDesc("sipfailover_flow_keepalive_answered_timestamp_seconds",
		"When a line's flow keep-alive was last answered, in Unix seconds; absent until one is.", []string{"line"}, nil)
)

// flowCollector reads the lines' flow keep-alives at each scrape.
type flowCollector struct{ lines func() []runtime.Status }

func (c *flowCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFlowSent, descFlowLost, descFlowRTT, descFlowAnswered} {
		ch <- d
	}
}

func (c *flowCollector) Collect(ch chan<- prometheus.Metric) {
	if c.lines == nil {
		return
	}
	for _, st := range c.lines() {
		ch <- prometheus.MustNewConstMetric(descFlowSent, prometheus.CounterValue, float64(st.FlowKeepalivesSent), st.Line)
		ch <- prometheus.MustNewConstMetric(descFlowLost, prometheus.CounterValue, float64(st.FlowKeepalivesLost), st.Line)
		if !st.FlowAnsweredAt.IsZero() {
			ch <- prometheus.MustNewConstMetric(descFlowRTT, prometheus.GaugeValue, st.FlowRTT.Seconds(), st.Line)
			ch <- prometheus.MustNewConstMetric(descFlowAnswered, prometheus.GaugeValue, float64(st.FlowAnsweredAt.UnixNano())/1e9, st.Line)
		}
	}
}

// lineCollector reads the lines' counters at each scrape.
type lineCollector struct{ m *Metrics }

func (c *lineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descFailovers, descFailbacks, descInState, descFailures} {
		ch <- d
	}
}

func (c *lineCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	m.mu.Lock()
	defer m.mu.Unlock()
	states := lineStates()
	now := m.now()
	for n, l := range m.lines {
		for _, s := range states {
			v := 0.0
			if s == l.state {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, n, s)
			d := l.inState[s]
			if s == l.state {
				d += now.Sub(l.since)
			}
			ch <- prometheus.MustNewConstMetric(descInState, prometheus.CounterValue, d.Seconds(), n, s)
		}
		ch <- prometheus.MustNewConstMetric(descFailovers, prometheus.CounterValue, float64(l.failovers), n)
		ch <- prometheus.MustNewConstMetric(descFailbacks, prometheus.CounterValue, float64(l.failbacks), n)
		for _, e := range failureEvents {
			ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(l.failures[e]), n, e)
		}
	}
}

// edgeCollector reads the agent's edge counters at each scrape.
type edgeCollector struct{ counters func() runtime.Counters }

func (c *edgeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDropped
	ch <- descPanics
	ch <- descRejectedCalls
}

func (c *edgeCollector) Collect(ch chan<- prometheus.Metric) {
	if c.counters == nil {
		return
	}
	n := c.counters()
	for why, v := range map[string]uint64{"unparsable": n.UnparsableMessages, "bad_request": n.BadRequests,
		"bad_response": n.BadResponses, "unmatched_response": n.UnmatchedResponses} {
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(v), why)
	}
	ch <- prometheus.MustNewConstMetric(descPanics, prometheus.CounterValue, float64(n.Panics))
	ch <- prometheus.MustNewConstMetric(descRejectedCalls, prometheus.CounterValue, float64(n.RejectedCalls))
}
