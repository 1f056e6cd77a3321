package runtime

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Agent runs lines over one Network: many lines share its sockets, and
// responses reach their line through the Via branch.
type Agent struct {
	net   Network
	clock Clock
	log   *slog.Logger
	watch func(Transition)

	randMu sync.Mutex
	rand   *rand.Rand

	mu       sync.Mutex
	lines    []*Line
	branches map[string]*Line
}

// Option configures an Agent.
type Option func(*Agent)

// WithClock sets the clock (default the wall clock).
func WithClock(c Clock) Option { return func(a *Agent) { a.clock = c } }

// WithLogger sets the logger; every transition is one log line (R14).
func WithLogger(l *slog.Logger) Option { return func(a *Agent) { a.log = l } }

// WithSeed seeds the random source of the back-off jitter (R9), so that a
// run can be replayed.
func WithSeed(seed uint64) Option {
	return func(a *Agent) { a.rand = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
}

// WithWatcher calls f after every transition of every line, those that stay
// in their state included (From == To), on the line's goroutine; f must not
// call back into the line.
func WithWatcher(f func(Transition)) Option { return func(a *Agent) { a.watch = f } }

// NewAgent returns an agent that sends over n.
func NewAgent(n Network, opts ...Option) *Agent {
	a := &Agent{
		net:      n,
		clock:    RealClock{},
		log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		rand:     rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		branches: map[string]*Line{},
	}
	for _, o := range opts {
		o(a)
	}
	n.SetHandler(a)
	return a
}

// AddLine validates cfg and adds a line, not yet registered: call Register.
func (a *Agent) AddLine(cfg LineConfig) (*Line, error) {
	if err := (Config{Lines: []LineConfig{cfg}}).Validate(); err != nil {
		return nil, err
	}
	l, err := newLine(a, cfg.Defaults())
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.lines = append(a.lines, l)
	a.mu.Unlock()
	return l, nil
}

// RemoveLine drops l from the agent; unregister it first.
func (a *Agent) RemoveLine(l *Line) {
	l.mu.Lock()
	l.timers.stopAll()
	for _, t := range []*txn{l.main, l.probe, l.ka, l.dereg} {
		l.finish(t)
	}
	for _, r := range slices.Clone(l.requests) { // end removes r from l.requests
		r.end()
	}
	l.mu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lines = slices.DeleteFunc(a.lines, func(x *Line) bool { return x == l })
}

// Lines returns the agent's lines.
func (a *Agent) Lines() []*Line {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*Line(nil), a.lines...)
}

// jitter returns a random whole number in [0, n].
func (a *Agent) jitter(n int64) int64 {
	if n <= 0 {
		return 0
	}
	a.randMu.Lock()
	defer a.randMu.Unlock()
	return a.rand.Int64N(n + 1)
}

func (a *Agent) bind(branch string, l *Line) {
	a.mu.Lock()
	a.branches[branch] = l
	a.mu.Unlock()
}

func (a *Agent) unbind(branch string) {
	a.mu.Lock()
	delete(a.branches, branch)
	a.mu.Unlock()
}

// HandleResponse routes a response to the line whose request it answers.
func (a *Agent) HandleResponse(from Endpoint, res *sip.Response) {
	via := res.Via()
	if via == nil {
		a.log.Warn("response without Via dropped", "from", from.String(), "status", res.StatusCode)
		return
	}
	branch, _ := via.Params.Get("branch")
	a.mu.Lock()
	l := a.branches[branch]
	a.mu.Unlock()
	if l == nil {
		return // a late answer to a request the line has abandoned
	}
	l.response(branch, res)
}

// HandleUnreachable tells every line with a request in flight to dst.
func (a *Agent) HandleUnreachable(dst Endpoint, err *TransportError) {
	for _, l := range a.Lines() {
		l.unreachable(dst, err)
	}
}

// Transition is one state change of a line, as watchers and logs see it.
type Transition struct {
	Line       string
	From, To   string
	Event      string
	ID         string // the model transition taken
	Server     int    // the line's server after the transition
	ServerAddr string
	Reason     string // why, for failures: "503 Service Unavailable from UDP 127.0.0.1:5070"
	At         time.Time
}

func (t Transition) String() string {
	return fmt.Sprintf("%s: %s -> %s on %s (%s) server %d %s %s", t.Line, t.From, t.To, t.Event, t.ID, t.Server, t.ServerAddr, t.Reason)
}
