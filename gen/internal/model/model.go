// Package model holds the parsed form of a model file, with the position of
// every element, and the checks that make a model valid.
package model

import (
	"slices"

	"github.com/sipfailover/sipfailover/gen/internal/diag"
	"github.com/sipfailover/sipfailover/gen/internal/expr"
)

// Model is one parsed model file: one state machine.
type Model struct {
	Path        string
	Source      []byte
	Name        Ref // machine name
	Doc         string
	Implements  []Ref // requirements the machine as a whole implements
	Params      []*Param
	Vars        []*Var
	Derived     []*Derived
	Guards      []*Guard
	Events      []*Event // declared events, then one timer.<name> per timer
	Timers      []*Timer
	Actions     []*Action
	States      []*State
	Transitions []*Transition
	Invariants  []*Invariant
	Verify      Verify // how the model checker explores the machine's environment
}

// Verify says how the machine is checked exhaustively (verify/<machine>.pml):
// which events answer which actions, the values each param takes, and which
// params the runtime changes while the machine runs.
type Verify struct {
	Answers []*Answers
	Domains map[string][]int64 // param -> the values it takes; default: a bool both, an int its min and the two above
	Varies  map[string][]Ref   // param -> the actions after which the runtime may change it; "event": before any event
	Keys    map[string]Ref     // the param names of Domains and Varies as written, for messages
	// Requires relates the params as the runtime keeps them (line_server <
	// server_count): only values that satisfy it are explored.
	Requires *Expr
}

// Answers is a request the machine's actions send and the events that
// answer it: the environment sends one of Events only while a request of
// After is unanswered.
type Answers struct {
	Ref
	After  []Ref // the actions that send the request
	Events []Ref // the events that answer it
	Ends   []Ref // actions that end the request unanswered: its answers are dropped
	// Timer is the timer that gives up on the request. Under a leads-to
	// invariant's assumption, answers come before it: it runs out only when
	// no request of the group awaits an answer.
	Timer  *Ref
	Single bool // at most one in flight: an action of After while one is unanswered is a violation
}

// Ref is a name as written in the model, with its position.
type Ref struct {
	Name string
	Pos  diag.Pos
}

// Expr is an expression as written in the model.
type Expr struct {
	Src  string
	Pos  diag.Pos // position of the first character of Src
	Node *expr.Node
}

// Param is a setting or fact the runtime supplies and the model reads.
type Param struct {
	Ref
	Type     expr.Type
	Min, Max *int64 // bounds of an int or duration (nanoseconds) param
	Doc      string
	Setting  string // the seed's setting name, if any
}

// Var is a small bounded variable that the machine owns and transitions set.
type Var struct {
	Ref
	Type     expr.Type // Int or Bool
	Min, Max int64
	Init     int64
	Doc      string
}

// Derived is a named expression over params, vars and guards.
type Derived struct {
	Ref
	Expr *Expr
	Doc  string
}

// Guard is a boolean fact that only the runtime knows, asked at the moment a
// transition is chosen.
type Guard struct {
	Ref
	Doc string
}

// Event is something that happens to the machine.
type Event struct {
	Ref
	Doc   string
	Timer *Timer // set for timer.<name> events
}

// Timer is a one-shot timer; when it fires the machine gets timer.<name>.
type Timer struct {
	Ref
	Duration   *Expr
	Enabled    *Expr // nil: always enabled
	Jitter     *Expr // nil: none; an int, percent: the runtime waits between (100-Jitter)% and 100% of the duration
	Doc        string
	Implements []Ref
	Event      *Event
}

// Action is an effect that the runtime performs.
type Action struct {
	Ref
	Doc string
}

// State is one state of the machine.
type State struct {
	Ref
	Doc     string
	Initial bool
	Final   bool
	Tags    []Ref
	After   []Ref   // timers armed on entry and cancelled on exit
	Entry   []*Step // steps run on entry
	Exit    []*Step // steps run on exit
	Ignore  []Ref   // events dropped on purpose
}

// StepKind says what a step does.
type StepKind int

const (
	// StepAction asks the runtime to perform an action.
	StepAction StepKind = iota + 1
	// StepArm starts a timer.
	StepArm
	// StepCancel stops a timer.
	StepCancel
	// StepSet assigns a variable.
	StepSet
)

// Step is one item of an entry, exit or do list.
type Step struct {
	Pos   diag.Pos
	Kind  StepKind
	Name  Ref   // action, timer or variable
	Value *Expr // for StepSet
	Src   string
}

// Transition says what an event does in a state.
type Transition struct {
	ID         Ref
	From       []Ref
	On         []Ref
	Branches   []*Branch
	Reenter    bool
	Doc        string
	Implements []Ref
}

// Branch is one guarded alternative of a transition; the last has no guard.
type Branch struct {
	Pos diag.Pos
	If  *Expr
	To  *Ref // nil: stay in the current state
	Do  []*Step
}

// Invariant is a property that must always hold.
type Invariant struct {
	ID         Ref
	Doc        string
	Always     *Expr
	LeadsTo    *LeadsTo
	Only       *Only
	Test       string
	Implements []Ref
}

// LeadsTo says: once the machine is in From, it reaches To within Within.
type LeadsTo struct {
	From    []Ref
	To      []Ref
	Within  *Expr
	When    *Expr  // params under which the invariant holds; nil: always
	Assumes string // what the environment must do for it to hold, in words
	Env     []Ref  // the events the environment sends while it is checked (Assumes, for the model checker); nil: every event
	// Recurring are events the environment keeps sending while it is
	// checked (requests keep coming, records keep expiring); Env's come a
	// finite number of times.
	Recurring []Ref
	Fix       map[string]int64 // params held at a value while it is checked
	FixKeys   map[string]Ref
}

// Only says: a transition from a From state to a To state happens only on
// one of the events On.
type Only struct {
	From, To, On []Ref
}

// State returns the state named name, or nil.
func (m *Model) State(name string) *State {
	for _, s := range m.States {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Event returns the event named name, or nil.
func (m *Model) Event(name string) *Event {
	for _, e := range m.Events {
		if e.Name == name {
			return e
		}
	}
	return nil
}

// Timer returns the timer named name, or nil.
func (m *Model) Timer(name string) *Timer {
	for _, t := range m.Timers {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Initial returns the initial state, or nil.
func (m *Model) Initial() *State {
	for _, s := range m.States {
		if s.Initial {
			return s
		}
	}
	return nil
}

// Targets returns the state a branch leads to when taken from state from.
func (b *Branch) Target(from string) string {
	if b.To == nil {
		return from
	}
	return b.To.Name
}

// TakenIn reports whether t may be taken in state: state is one of its From.
func (t *Transition) TakenIn(state string) bool {
	return slices.ContainsFunc(t.From, func(r Ref) bool { return r.Name == state })
}

// External reports whether taking b from state from leaves the state (runs
// its exit steps and the target's entry steps).
func (t *Transition) External(b *Branch, from string) bool {
	return b.Target(from) != from || t.Reenter
}
