package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/runtimetest"
)

// demo plays the seed's flows on loopback: a primary and a backup registrar
// with digest authentication, one line with short timers, and three ways
// for the primary to fail, each followed by its return and failback.
func demo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	t1 := fs.Duration("t1", 100*time.Millisecond, "RFC 3261 T1 of the line")
	keepalive := fs.Duration("keepalive", 500*time.Millisecond, "OPTIONS keep-alive interval")
	failback := fs.Int("failback-interval", 2, "Failback Interval, seconds")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	d, err := newDemo(stdout, *t1, *keepalive, *failback)
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	defer d.close()
	if err := d.run(); err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	return 0
}

type demoRun struct {
	out              io.Writer
	primary, backup  *runtimetest.Registrar
	net              *runtime.SocketNetwork
	line             *runtime.Line
	start            time.Time
	t1, keepalive    time.Duration
	failbackInterval time.Duration
	budget           time.Duration

	mu      sync.Mutex
	changed chan struct{}
}

func newDemo(out io.Writer, t1, keepalive time.Duration, failback int) (*demoRun, error) {
	d := &demoRun{out: out, changed: make(chan struct{}, 64), t1: t1, keepalive: keepalive,
		failbackInterval: time.Duration(failback) * time.Second}
	d.primary = &runtimetest.Registrar{Name: "primary", User: "1001", Password: "demo", MaxExpires: 60}
	d.backup = &runtimetest.Registrar{Name: "backup", User: "1001", Password: "demo", MaxExpires: 60}
	for _, r := range []*runtimetest.Registrar{d.primary, d.backup} {
		if err := r.Start(); err != nil {
			return nil, err
		}
	}
	port := func(r *runtimetest.Registrar) *int { p := r.Port(); return &p }
	retries := 3
	cfg := runtime.LineConfig{
		Name: "demo", User: "1001", Password: "demo", Domain: "demo.test", DisplayName: "Demo line",
		Servers: []runtime.ServerConfig{
			{Addr: "127.0.0.1", Port: port(d.primary)},
			{Addr: "127.0.0.1", Port: port(d.backup)},
		},
		FailbackInterval:  &failback,
		SignalRetryCounts: &retries,
		T1:                runtime.Duration(t1),
		T2:                runtime.Duration(8 * t1),
		KeepaliveInterval: runtime.Duration(keepalive),
	}
	// Timer E total of 3 transmissions: T1 + 2*T1 + 4*T1 (R3).
	d.budget = 7 * t1
	d.net = runtime.NewSocketNetwork(nil, nil)
	agent := runtime.NewAgent(d.net, runtime.WithWatcher(d.print))
	line, err := agent.AddLine(cfg)
	if err != nil {
		return nil, err
	}
	d.line = line
	return d, nil
}

func (d *demoRun) close() {
	d.net.Close()
	d.primary.Stop()
	d.backup.Stop()
}

func (d *demoRun) since() string {
	return fmt.Sprintf("%7.3fs", time.Since(d.start).Seconds())
}

func (d *demoRun) serverName(i int) string {
	if i == 0 {
		return "primary"
	}
	return "backup"
}

// print is the watcher: one timeline row per transition.
func (d *demoRun) print(t runtime.Transition) {
	if t.From == t.To {
		return // refreshes and keep-alives: the timeline shows changes
	}
	d.mu.Lock()
	fmt.Fprintf(d.out, "%s  %-19s %-8s %-18s %s\n", d.since(), t.To, d.serverName(t.Server), t.Event, t.Reason)
	d.mu.Unlock()
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

func (d *demoRun) say(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, "%s  --- "+format+"\n", append([]any{d.since()}, args...)...)
}

// wait returns how long the line took to reach state.
func (d *demoRun) wait(state string, within time.Duration) (time.Duration, error) {
	start := time.Now()
	deadline := time.After(within)
	for d.line.Status().State != state {
		select {
		case <-d.changed:
		case <-time.After(2 * time.Millisecond):
		case <-deadline:
			return 0, fmt.Errorf("the line did not reach %s within %v (status %+v)", state, within, d.line.Status())
		}
	}
	return time.Since(start), nil
}

type measure struct {
	what  string
	took  time.Duration
	bound time.Duration
	why   string
}

func (d *demoRun) run() error {
	fmt.Fprintf(d.out, "sipfailover demo: one line, primary %s and backup %s (UDP, digest auth)\n", d.primary.Addr, d.backup.Addr)
	fmt.Fprintf(d.out, "T1 %v, Signal Retry Counts 3 (budget %v), OPTIONS keep-alive every %v, Failback Interval %v\n\n",
		d.t1, d.budget, d.keepalive, d.failbackInterval)
	fmt.Fprintf(d.out, "%8s  %-19s %-8s %-18s %s\n", "time", "state", "server", "event", "why")
	d.start = time.Now()
	d.line.Register()
	if _, err := d.wait("primary_registered", 5*time.Second); err != nil {
		return err
	}
	type failure struct {
		name     string
		fail     func()
		recover  func() error
		bound    time.Duration
		boundWhy string
	}
	failures := []failure{
		{"the primary is killed (its port closes: ICMP port unreachable)", d.primary.Stop, d.primary.Start,
			d.keepalive + d.t1, "keep-alive interval + one round trip"},
		{"the primary goes silent (drops every request)", func() { d.primary.SetMode(runtimetest.Silent) },
			func() error { d.primary.SetMode(runtimetest.Up); return nil },
			d.keepalive + d.budget + d.t1, "keep-alive interval + retry budget + one round trip"},
		{"the primary answers 503 Service Unavailable", func() { d.primary.SetAnswer(503, 0) },
			func() error { d.primary.SetMode(runtimetest.Up); return nil },
			d.keepalive + d.t1, "keep-alive interval + one round trip"},
	}
	var results []measure
	for _, f := range failures {
		time.Sleep(d.keepalive / 3) // let the line settle between stories, off its keep-alive phase
		d.say("%s", f.name)
		f.fail()
		took, err := d.wait("backup_registered", 10*time.Second)
		if err != nil {
			return err
		}
		results = append(results, measure{"failover: " + f.name, took, f.bound, f.boundWhy})
		d.say("the primary is back")
		if err := f.recover(); err != nil {
			return err
		}
		took, err = d.wait("primary_registered", d.failbackInterval+64*d.t1+5*time.Second)
		if err != nil {
			return err
		}
		results = append(results, measure{"failback after it", took, d.failbackInterval + 64*d.t1 + d.t1,
			"at most Failback Interval + 64*T1 + one round trip (I1)"})
	}
	d.say("the line de-registers")
	d.line.Unregister()
	if _, err := d.wait("idle", 5*time.Second); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "\nmeasured (wall clock, loopback):\n")
	for _, r := range results {
		// Sleeps, goroutine scheduling and a busy machine add a little to a
		// wall-clock measurement; more than that is a fault.
		verdict := "within"
		if r.took > r.bound+max(50*time.Millisecond, r.bound/10) {
			verdict = "OVER"
		}
		fmt.Fprintf(d.out, "  %-75s %8v  %s bound %v (%s)\n", r.what, r.took.Round(time.Millisecond), verdict, r.bound, r.why)
	}
	if strings.Contains(fmt.Sprint(results), "OVER") {
		return fmt.Errorf("a measured time exceeded its bound")
	}
	return nil
}
