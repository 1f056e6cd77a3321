package main

import (
	"bytes"
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
)

// fleetOptions are the fleet command's settings.
type fleetOptions struct {
	lines           int
	userPattern     string // fmt pattern of the line's number, from 1
	passwordPattern string // "" keeps the template's password
	startRate       float64
	duration        time.Duration // 0: until the context ends
	spread          int           // every line's timer_spread (R21)
	pacing          settings.Pacing
	progress        time.Duration // how often to print the lines per state; 0: never
}

// fleetCmd is `sipfailover fleet`: many lines from one template in one
// process against a server pair, as a test engineer runs a fleet of phones
// (R21), and a report at the end.
func fleetCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	config := fs.String("config", "", "settings file; its first line is the template of every line")
	var o fleetOptions
	fs.IntVar(&o.lines, "lines", 100, "how many lines (1-100000)")
	fs.StringVar(&o.userPattern, "user-pattern", "2%04d", "the user of line i (from 1): a Go fmt pattern of i")
	fs.StringVar(&o.passwordPattern, "password-pattern", "", "the password of line i, a Go fmt pattern of i (default: the template's)")
	fs.Float64Var(&o.startRate, "start-rate", 50, "lines started per second, evenly spread (1-10000)")
	fs.DurationVar(&o.duration, "for", 0, "how long to run once every line has started (default: until SIGINT or SIGTERM)")
	fs.DurationVar(&o.progress, "progress", 5*time.Second, "print the lines in each state this often on standard error (0: never)")
	fs.IntVar(&o.spread, "spread", 20, "percent taken off each line's refresh, keep-alive and failback timers at random (0-50), so that they do not fire together")
	rate := fs.Float64("rate", 0, "new requests a second to one server, for all lines together (default: the settings' pacing, else 500)")
	burst := fs.Int("burst", 0, "new requests to one server at once after a quiet spell (default: the settings' pacing, else 100)")
	live := fs.String("status-addr", "", "serve the live report and picture at this loopback address (127.0.0.1:8090); default: none")
	picture := fs.String("picture", "", "also draw the run: lines per state and new requests a second per server over time (FILE.svg or FILE.png)")
	if code, ok := parse(fs, args, "fleet -config FILE [-lines N] [-user-pattern P] [-for D]", 0, 0, stdout, stderr); !ok {
		return code
	}
	if *config == "" {
		fmt.Fprintln(stderr, "fleet: -config is required")
		return 2
	}
	cfg, err := settings.Load(*config)
	if err != nil {
		fmt.Fprintln(stderr, "fleet:", err)
		return 1
	}
	o.pacing = cfg.PacingOrDefault()
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "rate":
			o.pacing.Rate = *rate
		case "burst":
			o.pacing.Burst = *burst
		}
	})
	f, err := newFleet(cfg, o)
	if err != nil {
		fmt.Fprintln(stderr, "fleet:", err)
		return 2
	}
	defer f.close()
	f.progress = stderr
	if *live != "" {
		if !loopback(*live) {
			fmt.Fprintf(stderr, "fleet: -status-addr %s %v\n", *live, errRemote)
			return 2
		}
		ln, err := net.Listen("tcp", *live)
		if err != nil {
			fmt.Fprintln(stderr, "fleet:", err)
			return 1
		}
		srv := f.serveFleet(ln)
		defer srv.Close()
		fmt.Fprintf(stderr, "fleet: live report at http://%s/\n", ln.Addr())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration+time.Duration(float64(o.lines)/o.startRate*float64(time.Second)))
		defer cancel()
	}
	f.run(ctx)
	f.report(stdout)
	if *picture != "" {
		if err := f.picture(*picture); err != nil {
			fmt.Fprintln(stderr, "fleet:", err)
			return 1
		}
	}
	return 0
}

// fleet is many lines of one agent, with what the report needs: every
// transition's time, and what each server was sent, a second at a time.
type fleet struct {
	opts     fleetOptions
	progress io.Writer      // where progress lines go
	numbers  map[string]int // "UDP 192.0.2.1:5060" -> its server's number in the template, from 1
	network  *countingNetwork
	agent    *runtime.Agent
	lines    []*runtime.Line

	mu        sync.Mutex
	begin     time.Time            // when the first line started
	samples   []fleetSample        // lines per state, four times a second
	ended     map[string]int       // lines per state when the run ended, before the de-registrations
	started   time.Duration        // how long starting every line took
	leftAt    map[string]time.Time // line -> when the fault that took it from the primary began
	onBackup  map[string]time.Time // line -> when it registered on a lower-priority server
	failovers []time.Duration      // from the fault a line saw to registered elsewhere
	faults    []time.Time          // when each failover's fault began, for the picture
	backAt    []time.Time          // when each line came back to the primary from a backup
	backups   []time.Duration      // from registered on a backup to back on the primary
	probeAt   map[string]time.Time // line -> when its latest failback probe started
	failbacks []time.Duration      // from the probe that succeeded to registered on the primary
}

// newFleet builds the lines from cfg's first line: each its own name,
// user and password from the patterns, every other setting the template's.
func newFleet(cfg settings.Config, o fleetOptions) (*fleet, error) {
	switch {
	case o.lines < 1 || o.lines > 100000:
		return nil, fmt.Errorf("-lines %d: 1 to 100000", o.lines)
	case o.startRate < 1 || o.startRate > 10000:
		return nil, fmt.Errorf("-start-rate %v: 1 to 10000 a second", o.startRate)
	case !strings.Contains(o.userPattern, "%"):
		return nil, fmt.Errorf("-user-pattern %q has no %% verb: every line would have the same user", o.userPattern)
	case o.progress < 0:
		return nil, fmt.Errorf("-progress %v: 0 (never) or more", o.progress)
	case o.spread < 0 || o.spread > 50:
		return nil, fmt.Errorf("-spread %d: 0 to 50 percent", o.spread)
	}
	if err := o.pacing.Validate(); err != nil {
		return nil, fmt.Errorf("-rate/-burst: %w", err)
	}
	tmpl := cfg.Lines[0]
	var lines []settings.LineConfig
	for i := 1; i <= o.lines; i++ {
		c := tmpl
		c.Servers = slices.Clone(tmpl.Servers)
		c.Name = fmt.Sprintf("fleet-%d", i)
		c.TimerSpread = o.spread
		c.User = fmt.Sprintf(o.userPattern, i)
		c.AuthUser = c.User
		if o.passwordPattern != "" {
			c.Password = fmt.Sprintf(o.passwordPattern, i)
		}
		lines = append(lines, c)
	}
	fc := cfg
	fc.Lines = lines
	if err := fc.Validate(); err != nil {
		return nil, err
	}
	tlsConf, err := cfg.TLSConfig()
	if err != nil {
		return nil, err
	}
	f := &fleet{opts: o, network: newCountingNetwork(transport.NewSocketNetwork(tlsConf, nil)),
		leftAt: map[string]time.Time{}, onBackup: map[string]time.Time{}, probeAt: map[string]time.Time{}, numbers: map[string]int{}}
	for i, sc := range tmpl.Defaults().Hops() {
		if *sc.Port != 0 {
			f.numbers[transport.Endpoint{Host: sc.Addr, Port: *sc.Port, Transport: *sc.Transport}.String()] = i + 1
		}
	}
	f.agent = runtime.NewAgent(f.network, runtime.WithResolver(cfg.Resolver()), runtime.WithWatcher(f.note), runtime.WithPacing(o.pacing))
	for _, c := range lines {
		l, err := f.agent.AddLine(c)
		if err != nil {
			f.close()
			return nil, err
		}
		f.lines = append(f.lines, l)
	}
	return f, nil
}

// note is the fleet's watcher: it times each failover, each stay on a
// backup and each failback.
func (f *fleet) note(t runtime.Transition) {
	if t.From == t.To {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case t.From == "primary_registered":
		// From the fault the line saw (its first request that the primary
		// left unanswered or failed): detection is part of a failover.
		f.leftAt[t.Line] = cmp.Or(t.FaultAt, t.At)
		if !t.FaultAt.IsZero() {
			f.faults = append(f.faults, t.FaultAt)
		}
	case t.To == "backup_registered" && t.From != "probing":
		if left, ok := f.leftAt[t.Line]; ok {
			f.failovers = append(f.failovers, t.At.Sub(left))
			delete(f.leftAt, t.Line)
		}
		f.onBackup[t.Line] = t.At
	case t.To == "probing":
		f.probeAt[t.Line] = t.At
	case t.To == "primary_registered":
		if since, ok := f.onBackup[t.Line]; ok {
			f.backups = append(f.backups, t.At.Sub(since))
			f.backAt = append(f.backAt, t.At)
			delete(f.onBackup, t.Line)
		}
		if probe, ok := f.probeAt[t.Line]; ok && t.From == "probing" {
			f.failbacks = append(f.failbacks, t.At.Sub(probe))
		}
		delete(f.probeAt, t.Line)
	}
}

// fleetSample is how many lines were in each state at a moment of the run.
type fleetSample struct {
	at     time.Duration
	states map[string]int
}

// sample notes how many lines are in each state now.
func (f *fleet) sample() fleetSample {
	s := fleetSample{states: map[string]int{}}
	for _, l := range f.lines {
		s.states[l.State().String()]++
	}
	f.mu.Lock()
	s.at = time.Since(f.begin)
	f.samples = append(f.samples, s)
	f.mu.Unlock()
	return s
}

// String is the sample as a progress line: the time and the lines in each
// state, the states in order of their names.
func (s fleetSample) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "fleet: %v", s.at.Round(100*time.Millisecond))
	for _, st := range slices.Sorted(maps.Keys(s.states)) {
		fmt.Fprintf(&b, " %s=%d", st, s.states[st])
	}
	return b.String()
}

// run starts the lines at the start rate, waits for ctx to end, and
// unregisters them; it samples the lines' states four times a second.
func (f *fleet) run(ctx context.Context) {
	start := time.Now()
	f.mu.Lock()
	f.begin = start
	f.mu.Unlock()
	sampling := make(chan struct{})
	go func() {
		defer close(sampling)
		tick := time.NewTicker(250 * time.Millisecond) // the picture's clock, not line logic
		defer tick.Stop()
		var shown time.Duration
		for {
			if s := f.sample(); f.progress != nil && f.opts.progress > 0 && (shown == 0 || s.at-shown >= f.opts.progress) {
				fmt.Fprintln(f.progress, s)
				shown = s.at
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	defer func() {
		<-sampling
		f.sample() // after the de-registrations
	}()
	every := time.Duration(float64(time.Second) / f.opts.startRate)
starting:
	for i, l := range f.lines {
		if wait := time.Until(start.Add(time.Duration(i) * every)); wait > 0 {
			select {
			case <-ctx.Done():
				break starting // the lines started so far are unregistered below
			case <-time.After(wait): // the program's pacing of its starts, not line logic
			}
		}
		l.Register()
	}
	f.mu.Lock()
	f.started = time.Since(start)
	f.mu.Unlock()
	<-ctx.Done()
	f.sample() // how the run ended, before the de-registrations
	f.mu.Lock()
	f.ended = f.samples[len(f.samples)-1].states
	f.mu.Unlock()
	unregisterAll(f.lines)
}

func (f *fleet) close() { f.network.Close() }

// fleetReport is what a fleet did, as the report prints it and the live
// page serves it.
type fleetReport struct {
	Lines     int             `json:"lines"`
	Started   string          `json:"started"` // how long starting every line took; "" while starting
	Ended     bool            `json:"ended"`   // States are from the end of the run, before de-registering
	States    map[string]int  `json:"states"`
	Failovers percentile      `json:"failovers"`      // from the fault a line saw to registered elsewhere
	OnBackup  percentile      `json:"time_on_backup"` // from registered on a backup to back on the primary
	Failbacks percentile      `json:"failbacks"`      // from the probe that succeeded to registered on the primary
	Pacing    settings.Pacing `json:"pacing"`         // rate 0: off
	Servers   []serverReport  `json:"servers"`        // the template's in order, then targets of names
	Elapsed   string          `json:"elapsed"`        // since the first line started
	Spread    int             `json:"timer_spread"`   // percent
}

// percentile is a distribution of durations: how many, and their 50th,
// 90th and 99th percentiles and maximum in milliseconds.
type percentile struct {
	Count int     `json:"count"`
	MS    []int64 `json:"p50_p90_p99_max_ms,omitempty"`
}

// serverReport is what one server was sent.
type serverReport struct {
	Number      int    `json:"number,omitempty"` // in the template, from 1; 0 for a target of a name
	Server      string `json:"server"`
	Messages    int    `json:"messages"`     // retransmissions included
	NewRequests int    `json:"new_requests"` // a branch not seen before
	PeakASecond int    `json:"peak_new_a_second"`
}

// snapshot is the report now: the lines per state at the end of the run
// when it has ended, else the latest sample.
func (f *fleet) snapshot() fleetReport {
	f.mu.Lock()
	r := fleetReport{Lines: len(f.lines), Ended: f.ended != nil, States: f.ended, Failovers: percentiles(f.failovers),
		OnBackup: percentiles(f.backups), Failbacks: percentiles(f.failbacks), Pacing: f.opts.pacing, Spread: f.opts.spread}
	if f.started > 0 {
		r.Started = f.started.Round(time.Millisecond).String()
	}
	if !f.begin.IsZero() {
		r.Elapsed = time.Since(f.begin).Round(100 * time.Millisecond).String()
	}
	if r.States == nil && len(f.samples) > 0 {
		r.States = f.samples[len(f.samples)-1].states
	}
	r.States = maps.Clone(r.States)
	f.mu.Unlock()
	for _, s := range f.servers() {
		l := f.network.load(s)
		r.Servers = append(r.Servers, serverReport{Number: f.numbers[s], Server: s, Messages: l.messages, NewRequests: l.requests, PeakASecond: l.peak})
	}
	return r
}

// report prints what the fleet did: lines per state, the failover and
// backup times' percentiles, and what each server was sent.
func (f *fleet) report(w io.Writer) { f.snapshot().print(w) }

func (r fleetReport) print(w io.Writer) {
	fmt.Fprintf(w, "fleet: %d lines, started in %s\n", r.Lines, cmp.Or(r.Started, "(still starting)"))
	when := "now"
	if r.Ended {
		when = "at the end, before de-registering"
	}
	fmt.Fprintf(w, "lines per state %s:", when)
	for _, s := range slices.Sorted(maps.Keys(r.States)) {
		fmt.Fprintf(w, " %s %d", s, r.States[s])
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "failovers, from the fault a line saw (its first request the primary left unanswered or failed) to registered on a backup: %s\n", r.Failovers)
	fmt.Fprintf(w, "time on a backup, from registered there to registered on the primary again: %s\n", r.OnBackup)
	fmt.Fprintf(w, "failbacks, from the probe that succeeded to registered on the primary: %s\n", r.Failbacks)
	pacing := "off"
	if p := r.Pacing; p.Rate > 0 {
		pacing = fmt.Sprintf("at most %d at once, then %v a second", p.Burst, p.Rate)
	}
	fmt.Fprintf(w, "new requests to each server (pacing: %s):\n", pacing)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tSERVER\tMESSAGES\tNEW REQUESTS\tPEAK NEW A SECOND")
	for _, s := range r.Servers {
		n := "-" // a target of a name (R20)
		if s.Number > 0 {
			n = strconv.Itoa(s.Number)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\n", n, s.Server, s.Messages, s.NewRequests, s.PeakASecond)
	}
	tw.Flush()
}

// servers are the servers the fleet sent to, those of the template in its
// order, then the targets of its names.
func (f *fleet) servers() []string {
	out := f.network.servers()
	slices.SortStableFunc(out, func(a, b string) int {
		na, oka := f.numbers[a]
		nb, okb := f.numbers[b]
		switch {
		case oka && okb:
			return na - nb
		case oka:
			return -1
		case okb:
			return 1
		}
		return 0
	})
	return out
}

// percentiles returns how many durations there are and their 50th, 90th
// and 99th percentiles and maximum.
func percentiles(ds []time.Duration) percentile {
	if len(ds) == 0 {
		return percentile{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	p := percentile{Count: len(s)}
	for _, d := range []time.Duration{at(0.5), at(0.9), at(0.99), s[len(s)-1]} {
		p.MS = append(p.MS, d.Milliseconds())
	}
	return p
}

func (p percentile) String() string {
	if p.Count == 0 {
		return "0"
	}
	d := func(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }
	return fmt.Sprintf("%d, p50 %v, p90 %v, p99 %v, max %v", p.Count, d(p.MS[0]), d(p.MS[1]), d(p.MS[2]), d(p.MS[3]))
}

// countingNetwork is the real network, counting what each server is sent:
// messages, and new requests (a branch not seen before, RFC 3261 8.1.1.7)
// in each second.
type countingNetwork struct {
	*transport.SocketNetwork
	mu       sync.Mutex
	messages map[string]int              // server -> messages, retransmissions included
	sent     map[string]map[int64]int    // server -> unix second -> new requests
	branches map[string]map[string]int64 // server -> branch -> the second it was first sent
	pruned   int64                       // the second branches were last pruned
}

func newCountingNetwork(n *transport.SocketNetwork) *countingNetwork {
	return &countingNetwork{SocketNetwork: n, messages: map[string]int{}, sent: map[string]map[int64]int{}, branches: map[string]map[string]int64{}}
}

// branchMemory is how long a branch is remembered: longer than any
// transaction retransmits (64*T1 at T1 of at most a few seconds).
const branchMemory = 600

// Send implements transport.Network.
func (n *countingNetwork) Send(dst transport.Endpoint, msg []byte) error {
	now := time.Now().Unix()
	s := dst.String()
	n.mu.Lock()
	if n.sent[s] == nil {
		n.sent[s], n.branches[s] = map[int64]int{}, map[string]int64{}
	}
	n.messages[s]++
	if b := branchOf(msg); b == "" {
		n.sent[s][now]++
	} else if _, seen := n.branches[s][b]; !seen {
		n.branches[s][b] = now
		n.sent[s][now]++
	}
	if now-n.pruned > branchMemory {
		for _, bs := range n.branches {
			maps.DeleteFunc(bs, func(_ string, at int64) bool { return now-at > branchMemory })
		}
		n.pruned = now
	}
	n.mu.Unlock()
	return n.SocketNetwork.Send(dst, msg)
}

// branchOf returns the branch of a request's first Via, "" if it has none.
func branchOf(msg []byte) string {
	_, rest, ok := bytes.Cut(msg, []byte(";branch="))
	if !ok {
		return ""
	}
	if end := bytes.IndexAny(rest, ";, \t\r\n"); end >= 0 {
		rest = rest[:end]
	}
	return string(rest)
}

func (n *countingNetwork) servers() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Sorted(maps.Keys(n.sent))
}

// serverLoad is what a server was sent over the run.
type serverLoad struct {
	messages, requests int
	peak               int // new requests in the busiest second
}

// load returns what server s was sent.
func (n *countingNetwork) load(s string) serverLoad {
	n.mu.Lock()
	defer n.mu.Unlock()
	l := serverLoad{messages: n.messages[s]}
	for _, c := range n.sent[s] {
		l.requests += c
		l.peak = max(l.peak, c)
	}
	return l
}
