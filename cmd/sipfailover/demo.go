package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipfailover/sipfailover/fsm"
	"github.com/sipfailover/sipfailover/internal/labserver"
	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
)

// demo plays the seed's flows on loopback: a primary and a backup registrar
// with digest authentication that share their registrations and proxy
// calls, one line with short timers, a far-end phone behind both, three
// ways for the primary to fail, each followed by its return and failback,
// and calls whose BYE and INVITE fail over.
func demo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	t1 := fs.Duration("t1", 100*time.Millisecond, "RFC 3261 T1 of the line")
	keepalive := fs.Duration("keepalive", 500*time.Millisecond, "OPTIONS keep-alive interval")
	failback := fs.Int("failback-interval", 2, "Failback Interval, seconds")
	if code, ok := parse(fs, args, "demo [-t1 D] [-keepalive D] [-failback-interval S]", 0, 0, stdout, stderr); !ok {
		return code
	}
	// The demo prints a timeline; of what sipgo logs itself (its embedded
	// registrars' transports), errors only, to standard error.
	sip.SetDefaultLogger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError})).With("lib", "sipgo"))
	switch {
	case *t1 < time.Millisecond || *t1 > 10*time.Second:
		fmt.Fprintf(stderr, "demo: -t1 %v: T1 must be 1ms to 10s\n", *t1)
		return 2
	case *keepalive < 0:
		fmt.Fprintf(stderr, "demo: -keepalive %v: 0 (off) or more\n", *keepalive)
		return 2
	case *failback < 1 || *failback > 86400:
		fmt.Fprintf(stderr, "demo: -failback-interval %d: 1 to 86400 seconds\n", *failback)
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
	primary, backup  *labserver.Registrar
	phone            *labserver.Phone
	net              *transport.SocketNetwork
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
	loc, far := labserver.NewLocation(), map[string]string{"1002": "far"}
	d.primary = &labserver.Registrar{Name: "primary", User: "1001", Password: "demo", Users: far, Location: loc, MaxExpires: 60}
	d.backup = &labserver.Registrar{Name: "backup", User: "1001", Password: "demo", Users: far, Location: loc, MaxExpires: 60}
	d.phone = &labserver.Phone{User: "1002", Password: "far"}
	for _, r := range []*labserver.Registrar{d.primary, d.backup} {
		if err := r.Start(); err != nil {
			return nil, err
		}
	}
	if err := d.phone.Start(); err != nil {
		return nil, err
	}
	if err := d.phone.Register(d.primary.Addr); err != nil {
		return nil, err
	}
	port := func(r *labserver.Registrar) *int { p := r.Port(); return &p }
	retries := 3
	cfg := settings.LineConfig{
		Name: "demo", User: "1001", Password: "demo", Domain: "demo.test", DisplayName: "Demo line",
		Servers: []settings.ServerConfig{
			{Addr: "127.0.0.1", Port: port(d.primary)},
			{Addr: "127.0.0.1", Port: port(d.backup)},
		},
		FailbackInterval:  &failback,
		SignalRetryCounts: &retries,
		T1:                settings.Duration(t1),
		T2:                settings.Duration(8 * t1),
		KeepaliveInterval: settings.Duration(keepalive),
	}
	// Timer E total of 3 transmissions: T1 + 2*T1 + 4*T1 (R3).
	d.budget = 7 * t1
	d.net = transport.NewSocketNetwork(nil, nil)
	agent := runtime.NewAgent(d.net, runtime.WithWatcher(d.print), runtime.WithCallWatcher(d.printCall))
	line, err := agent.AddLine(cfg)
	if err != nil {
		return nil, err
	}
	d.line = line
	return d, nil
}

func (d *demoRun) close() {
	d.net.Close()
	d.phone.Stop()
	d.primary.Stop()
	d.backup.Stop()
}

func (d *demoRun) since() string {
	return fmt.Sprintf("%7.3fs", time.Since(d.start).Seconds())
}

// serverName names server n of the line's list (from 1); none before a
// call's INVITE has gone anywhere.
func (d *demoRun) serverName(n int) string {
	switch n {
	case 0:
		return ""
	case 1:
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

// printCall is the call watcher: one timeline row per change of a call.
func (d *demoRun) printCall(c runtime.CallInfo) {
	d.mu.Lock()
	fmt.Fprintf(d.out, "%s  %-19s %-8s %-18s %s\n", d.since(), "call "+c.State, d.serverName(c.Server), "", c.Reason)
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

// waitCall returns how long the call took to reach state.
func (d *demoRun) waitCall(c *runtime.Call, state fsm.CallState, within time.Duration) (time.Duration, error) {
	start := time.Now()
	deadline := time.After(within)
	for c.State() != state {
		select {
		case <-d.changed:
		case <-time.After(2 * time.Millisecond):
		case <-deadline:
			return 0, fmt.Errorf("the call did not reach %s within %v (%+v)", state, within, c.Info())
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
		{"the primary goes silent (drops every request)", func() { d.primary.SetMode(labserver.Silent) },
			func() error { d.primary.SetMode(labserver.Up); return nil },
			d.keepalive + d.budget + d.t1, "keep-alive interval + retry budget + one round trip"},
		{"the primary answers 503 Service Unavailable", func() { d.primary.SetAnswer(503, 0) },
			func() error { d.primary.SetMode(labserver.Up); return nil },
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
	calls, err := d.calls()
	if err != nil {
		return err
	}
	results = append(results, calls...)
	d.say("the line de-registers")
	d.line.Unregister()
	if _, err := d.wait("idle", 5*time.Second); err != nil {
		return err
	}
	return report(d.out, results)
}

// report prints the measured times next to their bounds, and fails when one
// is over.
func report(out io.Writer, results []measure) error {
	fmt.Fprintf(out, "\nmeasured (wall clock, loopback):\n")
	over := 0
	for _, r := range results {
		// Sleeps, goroutine scheduling and a busy machine add a little to a
		// wall-clock measurement; more than that is a fault.
		verdict := "within"
		if r.took > r.bound+max(100*time.Millisecond, r.bound/10) {
			verdict = "OVER"
			over++
		}
		fmt.Fprintf(out, "  %-75s %8v  %s bound %v (%s)\n", r.what, roundTook(r.took), verdict, r.bound, r.why)
	}
	if over > 0 {
		return fmt.Errorf("%d measured times exceeded their bounds", over)
	}
	return nil
}

// roundTook keeps three digits of a measured time.
func roundTook(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(10 * time.Microsecond)
}

// calls plays seed 2.2.3 and 2.2.2: a call through the primary whose BYE
// fails over when the primary dies during the call, then a new call while
// the primary is down, which goes through the backup; then the primary
// comes back and the line fails back.
func (d *demoRun) calls() ([]measure, error) {
	const far = "sip:1002@demo.test"
	d.say("the line calls the far end, 1002, registered through the primary")
	c, err := d.line.Dial(far)
	if err != nil {
		return nil, err
	}
	if _, err := d.waitCall(c, fsm.CallStateConfirmed, 5*time.Second); err != nil {
		return nil, err
	}
	d.say("the primary is killed during the call; the user hangs up")
	d.primary.Stop()
	c.Hangup()
	hangup, err := d.waitCall(c, fsm.CallStateEnded, 64*d.t1+5*time.Second)
	if err != nil {
		return nil, err
	}
	if st := d.phone.Call(c.ID()); st != "ended" {
		return nil, fmt.Errorf("the far end's call is %q after the BYE failed over, want ended", st)
	}
	d.say("the far end's call has ended: its BYE came through the backup")
	d.say("a new call while the primary is down")
	c, err = d.line.Dial(far)
	if err != nil {
		return nil, err
	}
	setup, err := d.waitCall(c, fsm.CallStateConfirmed, 64*d.t1+5*time.Second)
	if err != nil {
		return nil, err
	}
	if info := c.Info(); info.Server != 2 {
		return nil, fmt.Errorf("the call went through server %d, want the backup", info.Server)
	}
	c.Hangup()
	if _, err := d.waitCall(c, fsm.CallStateEnded, 5*time.Second); err != nil {
		return nil, err
	}
	d.say("the primary is back")
	if err := d.primary.Start(); err != nil {
		return nil, err
	}
	back, err := d.wait("primary_registered", d.failbackInterval+64*d.t1+5*time.Second)
	if err != nil {
		return nil, err
	}
	rtt := d.t1 // T1 is RFC 3261's estimate of a round trip
	return []measure{
		{"hang-up: BYE failed over from the killed primary to the backup", hangup, d.budget + 3*rtt,
			"retry budget + REGISTER, digest and BYE round trips (R7)"},
		{"call set-up while the primary is down", setup, 3 * rtt,
			"INVITE, digest and 200 round trips through the backup (R6)"},
		{"failback after it", back, d.failbackInterval + 64*d.t1 + d.t1,
			"at most Failback Interval + 64*T1 + one round trip (I1)"},
	}, nil
}
