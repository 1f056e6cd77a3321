package emit

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sipfailover/sipfailover/gen/internal/expr"
	"github.com/sipfailover/sipfailover/gen/internal/model"
)

// The Go machine itself: its struct, entry and exit steps, Fire, and the
// invariants it checks.

func (g *goGen) machine() {
	m := g.m
	init := m.Initial()
	g.w.comment("", fmt.Sprintf("%sMachine is the %s machine:", g.M, m.Name.Name), m.Doc)
	g.p("//")
	g.p("// It is pure: Fire takes an event and returns the effects to perform; it")
	g.p("// never sleeps, sends or reads a clock. State changes go through")
	g.p("// github.com/looplab/fsm, one looplab event per branch of the model, with")
	g.p("// no callbacks. A machine is not safe for concurrent use.")
	g.p("type %sMachine struct {", g.M)
	g.p("params %sParams", g.M)
	g.p("guards %sGuards", g.M)
	g.p("vars %sVars", g.M)
	g.p("state %sState", g.M)
	g.p("effects []%sEffect", g.M)
	g.p("}")
	g.p("")
	g.p("// %sEngine is the looplab machine every %sMachine moves through: set to", lowerFirst(g.M), g.M)
	g.p("// the machine's state, then fired the branch's event. looplab keeps its")
	g.p("// transition table in each of its machines; one for all keeps a fleet of")
	g.p("// lines from holding thousands of copies. %sEngineMu serialises its use.", lowerFirst(g.M))
	g.p("var (")
	g.p("%sEngineMu sync.Mutex", lowerFirst(g.M))
	g.p("%sEngine = looplab.NewFSM(%q, %sEvents, nil)", lowerFirst(g.M), init.Name, lowerFirst(g.M))
	g.p(")")
	g.p("")
	g.p("// %sEvents is the looplab wiring: one event per branch of the model.", lowerFirst(g.M))
	g.p("var %sEvents = looplab.Events{", lowerFirst(g.M))
	for _, t := range m.Transitions {
		for k, b := range t.Branches {
			id := branchID(t, k)
			if b.To != nil {
				g.p("{Name: %q, Src: %s, Dst: %q},", id, quoteAll(model.Names(t.From)), b.To.Name)
				continue
			}
			for _, fr := range t.From {
				g.p("{Name: %q, Src: []string{%q}, Dst: %q},", id, fr.Name, fr.Name)
			}
		}
	}
	g.p("}")
	g.p("")
	g.p("// New%sMachine returns a machine in state %s. Call Start before the first", g.M, init.Name)
	g.p("// event. guards may be nil when the model has no guards.")
	g.p("func New%sMachine(p %sParams, guards %sGuards) *%sMachine {", g.M, g.M, g.M, g.M)
	g.p("return &%sMachine{params: p, guards: guards, vars: %sInitialVars(), state: %s,", g.M, lowerFirst(g.M), g.state(init.Name))
	g.p("effects: make([]%sEffect, 0, 16)}", g.M)
	g.p("}")
	g.p("")
	g.p("// Start returns the entry effects of the initial state (its timers and")
	g.p("// entry steps). The slice is valid until the next call of Fire or Start.")
	g.p("func (m *%sMachine) Start() ([]%sEffect, error) {", g.M, g.M)
	g.p("m.effects = m.effects[:0]")
	g.p("v := m.vars")
	g.p("if err := m.enter%s(&v, %q); err != nil { m.effects = m.effects[:0]; return nil, err }", model.GoName(init.Name), "start")
	g.p("m.vars = v")
	g.p("return m.effects, nil")
	g.p("}")
	g.p("")
	g.p("// State returns the current state.")
	g.p("func (m *%sMachine) State() %sState { return m.state }", g.M, g.M)
	g.p("")
	g.p("// Vars returns a copy of the machine's variables.")
	g.p("func (m *%sMachine) Vars() %sVars { return m.vars }", g.M, g.M)
	g.p("")
	g.p("// Params returns the params the machine reads.")
	g.p("func (m *%sMachine) Params() %sParams { return m.params }", g.M, g.M)
	g.p("")
	g.p("// SetParams replaces the params, for example when the runtime learns the")
	g.p("// expiry a server granted. Timers already armed keep their durations.")
	g.p("func (m *%sMachine) SetParams(p %sParams) { m.params = p }", g.M, g.M)
	g.p("")
	g.p("// FSM returns a looplab machine in the machine's state, for inspection")
	g.p("// (looplab.Visualize, Current); it is the machine's copy, and firing its")
	g.p("// events changes nothing here.")
	g.p("func (m *%sMachine) FSM() *looplab.FSM { return looplab.NewFSM(m.state.String(), %sEvents, nil) }", g.M, lowerFirst(g.M))
	g.p("")
	for _, d := range m.Derived {
		t := d.Expr.Node.Type
		g.w.comment("", model.GoName(d.Name)+" is "+d.Name+":", d.Doc)
		g.p("func (m *%sMachine) %s() %s { return m.derived%s(&m.vars) }", g.M, model.GoName(d.Name), goType(t), model.GoName(d.Name))
		g.p("")
		g.p("func (m *%sMachine) derived%s(v *%sVars) %s { return %s }", g.M, model.GoName(d.Name), g.M, goType(t), expr.Go(d.Expr.Node, g.env))
		g.p("")
	}
	// Entry and exit of every state.
	for _, s := range m.States {
		g.p("func (m *%sMachine) enter%s(v *%sVars, transition string) error {", g.M, model.GoName(s.Name), g.M)
		// Entry steps first, then the state's timers: a timer's duration sees
		// the variables the entry steps set.
		g.steps(s.Entry, "transition")
		for _, t := range s.After {
			g.arm(t.Name)
		}
		g.p("_, _ = v, transition")
		g.p("return nil")
		g.p("}")
		g.p("")
		g.p("func (m *%sMachine) exit%s(v *%sVars, fired %sTimer, transition string) error {", g.M, model.GoName(s.Name), g.M, g.M)
		g.steps(s.Exit, "transition")
		for _, t := range s.After {
			g.p("if fired != %s { m.effects = append(m.effects, %sEffect{Kind: EffectCancel, Timer: %s}) }", g.timer(t.Name), g.M, g.timer(t.Name))
		}
		g.p("_, _ = v, transition")
		g.p("return nil")
		g.p("}")
		g.p("")
	}
}

// arm writes the effect that starts a timer, honouring its enabled condition.
func (g *goGen) arm(name string) {
	t := g.m.Timer(name)
	jitter := "0"
	if t.Jitter != nil {
		jitter = expr.Go(t.Jitter.Node, g.env)
	}
	eff := fmt.Sprintf("m.effects = append(m.effects, %sEffect{Kind: EffectArm, Timer: %s, After: %s, Jitter: %s})", g.M, g.timer(name), expr.Go(t.Duration.Node, g.env), jitter)
	if t.Enabled != nil {
		g.p("if %s { %s }", expr.Go(t.Enabled.Node, g.env), eff)
	} else {
		g.p("%s", eff)
	}
}

// steps writes the effects and variable updates of a step list; transition
// is the Go expression naming the transition, for range errors.
func (g *goGen) steps(steps []*model.Step, transition string) {
	for _, s := range steps {
		switch s.Kind {
		case model.StepAction:
			g.p("m.effects = append(m.effects, %sEffect{Kind: EffectAction, Action: %s})", g.M, g.action(s.Name.Name))
		case model.StepArm:
			g.arm(s.Name.Name)
		case model.StepCancel:
			g.p("m.effects = append(m.effects, %sEffect{Kind: EffectCancel, Timer: %s})", g.M, g.timer(s.Name.Name))
		case model.StepSet:
			v := g.varNamed(s.Name.Name)
			field := "v." + model.GoName(v.Name)
			val := expr.Go(s.Value.Node, g.env)
			lit := s.Value.Node.Op == "lit"
			if v.Type == expr.Bool || lit && s.Value.Node.Val >= v.Min && s.Value.Node.Val <= v.Max {
				g.p("%s = %s", field, val)
				continue
			}
			g.p("if x := %s; x < %d || x > %d {", val, v.Min, v.Max)
			g.p("return &VarRangeError{Machine: %q, Transition: %s, Var: %q, Value: int64(x), Min: %d, Max: %d}", g.m.Name.Name, transition, v.Name, v.Min, v.Max)
			g.p("} else {")
			g.p("%s = x", field)
			g.p("}")
		}
	}
}

func (g *goGen) varNamed(name string) *model.Var {
	for _, v := range g.m.Vars {
		if v.Name == name {
			return v
		}
	}
	panic("unchecked var " + name)
}

func (g *goGen) fire() {
	m := g.m
	g.p("// Fire delivers ev: it chooses the transition of the current state and its")
	g.p("// first branch whose condition holds, moves, and returns the effects to")
	g.p("// perform in order. An event the state ignores changes nothing. On error")
	g.p("// nothing changes.")
	g.p("func (m *%sMachine) Fire(ev %sEvent) (%sStep, error) {", g.M, g.M, g.M)
	g.p("step := %sStep{From: m.state, To: m.state, Event: ev}", g.M)
	g.p("m.effects = m.effects[:0]")
	g.p("next := m.vars")
	g.p("v := &next")
	g.p("var fired %sTimer", g.M)
	g.p("switch ev {")
	for _, t := range m.Timers {
		g.p("case %s: fired = %s", g.event(t.Event.Name), g.timer(t.Name))
	}
	g.p("}")
	g.p("_ = fired")
	g.p("var err error")
	g.p("switch m.state {")
	for _, s := range m.States {
		if s.Final {
			continue
		}
		g.p("case %s:", g.state(s.Name))
		g.p("switch ev {")
		for _, t := range m.Transitions {
			if !t.TakenIn(s.Name) {
				continue
			}
			var on []string
			for _, r := range t.On {
				on = append(on, g.event(r.Name))
			}
			g.p("case %s:", strings.Join(on, ", "))
			g.w.comment("", "Transition "+t.ID.Name+":", t.Doc)
			for k, b := range t.Branches {
				switch {
				case b.If == nil && k == 0:
					g.p("{")
				case b.If == nil:
					g.p("} else {")
				case k == 0:
					g.p("if %s {", expr.Go(b.If.Node, g.env))
				default:
					g.p("} else if %s {", expr.Go(b.If.Node, g.env))
				}
				id := branchID(t, k)
				to := b.Target(s.Name)
				g.p("step.Transition, step.To = %q, %s", id, g.state(to))
				external := t.External(b, s.Name)
				g.p("err = func() error {")
				if external {
					g.p("if err := m.exit%s(v, fired, %q); err != nil { return err }", model.GoName(s.Name), id)
				}
				g.steps(b.Do, strconv.Quote(id))
				if external {
					g.p("return m.enter%s(v, %q)", model.GoName(to), id)
				} else {
					g.p("return nil")
				}
				g.p("}()")
			}
			g.p("}")
		}
		if len(s.Ignore) > 0 {
			var ign []string
			for _, r := range s.Ignore {
				ign = append(ign, g.event(r.Name))
			}
			g.p("case %s:", strings.Join(ign, ", "))
			g.p("step.Ignored = true")
			g.p("return step, nil")
		}
		g.p("}")
	}
	g.p("}")
	g.p("if step.Transition == \"\" {")
	g.p("return step, &UnhandledError{Machine: %q, State: m.state.String(), Event: ev.String()}", m.Name.Name)
	g.p("}")
	g.p("if err != nil {")
	g.p("m.effects = m.effects[:0]")
	g.p("return %sStep{From: m.state, To: m.state, Event: ev}, err", g.M)
	g.p("}")
	g.p("%sEngineMu.Lock()", lowerFirst(g.M))
	g.p("%sEngine.SetState(m.state.String())", lowerFirst(g.M))
	g.p("err = %sEngine.Event(context.Background(), step.Transition)", lowerFirst(g.M))
	g.p("%sEngineMu.Unlock()", lowerFirst(g.M))
	g.p("if err != nil {")
	g.p("// looplab reports a transition that stays as NoTransitionError; that is")
	g.p("// success here. It returns the error unwrapped, so a type assertion")
	g.p("// serves and costs no allocation.")
	g.p("if _, stay := err.(looplab.NoTransitionError); !stay {")
	g.p("m.effects = m.effects[:0]")
	g.p("return %sStep{From: m.state, To: m.state, Event: ev}, fmt.Errorf(\"%s: looplab refused %%s: %%w\", step.Transition, err)", g.M, m.Name.Name)
	g.p("}")
	g.p("}")
	g.p("m.vars, m.state = next, step.To")
	g.p("step.Effects = m.effects")
	g.p("return step, nil")
	g.p("}")
	g.p("")
}

func (g *goGen) invariants() {
	m := g.m
	g.p("// %sInvariants lists the model's invariants.", g.M)
	g.p("var %sInvariants = [...]Invariant{", g.M)
	for _, inv := range m.Invariants {
		kind, stmt := "always", ""
		switch {
		case inv.Always != nil:
			stmt = inv.Always.Src
		case inv.Only != nil:
			kind = "only"
			stmt = fmt.Sprintf("%s -> %s only on %s", strings.Join(model.Names(inv.Only.From), " | "), strings.Join(model.Names(inv.Only.To), " | "), strings.Join(model.Names(inv.Only.On), " | "))
		default:
			kind = "leads_to"
			stmt = fmt.Sprintf("%s ~> %s within %s", strings.Join(model.Names(inv.LeadsTo.From), " | "), strings.Join(model.Names(inv.LeadsTo.To), " | "), inv.LeadsTo.Within.Src)
			if inv.LeadsTo.When != nil {
				stmt += " when " + inv.LeadsTo.When.Src
			}
			if inv.LeadsTo.Assumes != "" {
				stmt += ", assuming " + inv.LeadsTo.Assumes
			}
		}
		g.p("{ID: %q, Doc: %q, Kind: %q, Statement: %q, Test: %q, Implements: %s},", inv.ID.Name, inv.Doc, kind, stmt, inv.Test, quoteAll(model.Names(inv.Implements)))
	}
	g.p("}")
	g.p("")
	g.p("// CheckAlways evaluates every always-invariant in the current state and")
	g.p("// returns the violated ones, each an *InvariantError, joined.")
	g.p("func (m *%sMachine) CheckAlways() error {", g.M)
	g.p("v := &m.vars")
	g.p("_ = v")
	g.p("var errs []error")
	for _, inv := range m.Invariants {
		if inv.Always == nil {
			continue
		}
		g.p("if !(%s) { errs = append(errs, &InvariantError{Machine: %q, ID: %q, Doc: %q, State: m.state.String()}) }", expr.Go(inv.Always.Node, g.inv), m.Name.Name, inv.ID.Name, inv.Doc)
	}
	g.p("return errors.Join(errs...)")
	g.p("}")
	g.p("")
	g.p("// %sLeadsTo is a bounded liveness invariant: once the machine is in a From", g.M)
	g.p("// state, it must reach a To state within Within.")
	g.p("type %sLeadsTo struct {", g.M)
	g.p("ID string")
	g.p("From, To []%sState", g.M)
	g.p("Within func(m *%sMachine) Duration", g.M)
	g.p("// When says whether the invariant applies under the machine's params.")
	g.p("When func(m *%sMachine) bool", g.M)
	g.p("// Assumes is what the environment must do for the invariant to hold; a")
	g.p("// check that does not control the environment skips it when set.")
	g.p("Assumes string")
	g.p("}")
	g.p("")
	g.p("// %sLeadsToInvariants are the model's leads-to invariants, for the property suite.", g.M)
	g.p("var %sLeadsToInvariants = [...]%sLeadsTo{", g.M, g.M)
	for _, inv := range m.Invariants {
		lt := inv.LeadsTo
		if lt == nil {
			continue
		}
		var from, to []string
		for _, r := range lt.From {
			from = append(from, g.state(r.Name))
		}
		for _, r := range lt.To {
			to = append(to, g.state(r.Name))
		}
		when := "true"
		if lt.When != nil {
			when = expr.Go(lt.When.Node, g.env)
		}
		g.p("{ID: %q, From: []%sState{%s}, To: []%sState{%s},", inv.ID.Name, g.M, strings.Join(from, ", "), g.M, strings.Join(to, ", "))
		g.p("Within: func(m *%sMachine) Duration { v := &m.vars; _ = v; return %s },", g.M, expr.Go(lt.Within.Node, g.env))
		g.p("When: func(m *%sMachine) bool { v := &m.vars; _ = v; return %s },", g.M, when)
		g.p("Assumes: %q},", lt.Assumes)
	}
	g.p("}")
}
