package model

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sipfailover/sipfailover/gen/internal/diag"
	"github.com/sipfailover/sipfailover/gen/internal/expr"
)

// Fields lists the keys each kind of mapping accepts. The JSON Schema in
// model/ is tested against it, so the two cannot drift apart.
var Fields = map[string][]string{
	"model":      {"machine", "doc", "implements", "params", "vars", "derived", "guards", "events", "timers", "actions", "states", "transitions", "invariants", "verify"},
	"param":      {"type", "doc", "setting", "min", "max"},
	"var":        {"type", "doc", "min", "max", "init"},
	"derived":    {"expr", "doc"},
	"guard":      {"doc"},
	"event":      {"doc"},
	"timer":      {"duration", "enabled", "jitter", "doc", "implements"},
	"action":     {"doc"},
	"state":      {"doc", "initial", "final", "tags", "after", "entry", "exit", "ignore"},
	"transition": {"id", "from", "on", "if", "to", "do", "branches", "reenter", "doc", "implements"},
	"branch":     {"if", "to", "do"},
	"invariant":  {"id", "doc", "always", "leads_to", "only", "test", "implements"},
	"leads_to":   {"from", "to", "within", "when", "assumes", "env", "recurring", "fix"},
	"only":       {"from", "to", "on"},
	"verify":     {"answers", "domains", "varies", "requires"},
	"answers":    {"after", "events", "ends", "timer", "single"},
}

type parser struct {
	path string
	errs *diag.List
}

// Parse reads a model file. Problems go to errs; the model returned holds
// whatever could be read, for further checks.
func Parse(path string, src []byte, errs *diag.List) *Model {
	p := &parser{path: path, errs: errs}
	m := &Model{Path: path, Source: src}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		line := 1
		msg := err.Error()
		if sub := yamlLine.FindStringSubmatch(msg); sub != nil {
			line, _ = strconv.Atoi(sub[1])
			msg = strings.Replace(msg, sub[0], "", 1)
		}
		msg = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(msg, "yaml:")), ":"))
		errs.Errorf(diag.Pos{Path: path, Line: line, Col: 1}, "yaml: %s", msg)
		return m
	}
	if len(doc.Content) == 0 {
		errs.Errorf(diag.Pos{Path: path, Line: 1, Col: 1}, "empty model")
		return m
	}
	root := doc.Content[0]
	fields := p.mapping(root, "model")
	if fields == nil {
		return m
	}
	if n := fields["machine"]; n != nil {
		m.Name = p.ref(n)
	} else {
		p.errs.Errorf(p.pos(root), "missing machine: the model's name")
	}
	m.Doc = p.str(fields["doc"])
	m.Implements = p.refs(fields["implements"])
	p.each(fields["params"], "param", func(name Ref, f map[string]*yaml.Node, n *yaml.Node) {
		par := &Param{Ref: name, Doc: p.str(f["doc"]), Setting: p.str(f["setting"])}
		par.Type = p.typ(f["type"], n, expr.Bool, expr.Int, expr.Duration)
		par.Min, par.Max = p.bound(f["min"], par.Type), p.bound(f["max"], par.Type)
		m.Params = append(m.Params, par)
	})
	p.each(fields["vars"], "var", func(name Ref, f map[string]*yaml.Node, n *yaml.Node) {
		v := &Var{Ref: name, Doc: p.str(f["doc"])}
		v.Type = p.typ(f["type"], n, expr.Bool, expr.Int)
		switch v.Type {
		case expr.Int:
			lo, hi := p.bound(f["min"], expr.Int), p.bound(f["max"], expr.Int)
			if lo == nil || hi == nil {
				p.errs.Errorf(p.pos(n), "int var %s needs min and max (vars are small and bounded)", name.Name)
				break
			}
			v.Min, v.Max, v.Init = *lo, *hi, *lo
			if init := p.bound(f["init"], expr.Int); init != nil {
				v.Init = *init
			}
			if v.Min > v.Max {
				p.errs.Errorf(p.pos(f["min"]), "var %s: min %d is above max %d", name.Name, v.Min, v.Max)
			} else if v.Init < v.Min || v.Init > v.Max {
				p.errs.Errorf(p.pos(f["init"]), "var %s: init %d is outside [%d, %d]", name.Name, v.Init, v.Min, v.Max)
			}
		case expr.Bool:
			v.Max = 1
			if f["min"] != nil || f["max"] != nil {
				p.errs.Errorf(p.pos(n), "bool var %s takes no min or max", name.Name)
			}
			if init := f["init"]; init != nil && p.boolean(init) {
				v.Init = 1
			}
		}
		m.Vars = append(m.Vars, v)
	})
	p.each(fields["derived"], "derived", func(name Ref, f map[string]*yaml.Node, n *yaml.Node) {
		d := &Derived{Ref: name, Doc: p.str(f["doc"]), Expr: p.expr(f["expr"])}
		if d.Expr == nil {
			p.errs.Errorf(p.pos(n), "derived %s needs expr", name.Name)
		}
		m.Derived = append(m.Derived, d)
	})
	p.each(fields["guards"], "guard", func(name Ref, f map[string]*yaml.Node, _ *yaml.Node) {
		m.Guards = append(m.Guards, &Guard{Ref: name, Doc: p.str(f["doc"])})
	})
	p.each(fields["events"], "event", func(name Ref, f map[string]*yaml.Node, _ *yaml.Node) {
		m.Events = append(m.Events, &Event{Ref: name, Doc: p.str(f["doc"])})
	})
	p.each(fields["timers"], "timer", func(name Ref, f map[string]*yaml.Node, n *yaml.Node) {
		t := &Timer{Ref: name, Doc: p.str(f["doc"]), Duration: p.expr(f["duration"]), Enabled: p.expr(f["enabled"]), Implements: p.refs(f["implements"])}
		if t.Duration == nil {
			p.errs.Errorf(p.pos(n), "timer %s needs duration: a setting (param) or an expression such as 64*t1", name.Name)
		}
		if j := f["jitter"]; j != nil {
			t.Jitter = p.expr(j)
			if v, err := strconv.ParseInt(j.Value, 10, 64); err == nil && (v < 0 || v > 100) {
				p.errs.Errorf(p.pos(j), "jitter is a percentage: 0 to 100")
			}
		}
		m.Timers = append(m.Timers, t)
	})
	p.each(fields["actions"], "action", func(name Ref, f map[string]*yaml.Node, _ *yaml.Node) {
		m.Actions = append(m.Actions, &Action{Ref: name, Doc: p.str(f["doc"])})
	})
	p.each(fields["states"], "state", func(name Ref, f map[string]*yaml.Node, _ *yaml.Node) {
		s := &State{Ref: name, Doc: p.str(f["doc"]), Tags: p.refs(f["tags"]), After: p.refs(f["after"]), Ignore: p.refs(f["ignore"])}
		s.Initial = f["initial"] != nil && p.boolean(f["initial"])
		s.Final = f["final"] != nil && p.boolean(f["final"])
		s.Entry, s.Exit = p.steps(f["entry"]), p.steps(f["exit"])
		m.States = append(m.States, s)
	})
	for _, n := range p.list(fields["transitions"]) {
		if t := p.transition(n); t != nil {
			m.Transitions = append(m.Transitions, t)
		}
	}
	for _, n := range p.list(fields["invariants"]) {
		if inv := p.invariant(n); inv != nil {
			m.Invariants = append(m.Invariants, inv)
		}
	}
	if vn := fields["verify"]; vn != nil {
		p.verify(vn, &m.Verify)
	}
	for _, t := range m.Timers {
		t.Event = &Event{Ref: Ref{Name: "timer." + t.Name, Pos: t.Pos}, Doc: "timer " + t.Name + " fired", Timer: t}
		m.Events = append(m.Events, t.Event)
	}
	return m
}

var yamlLine = regexp.MustCompile(`line (\d+):?`)

func (p *parser) pos(n *yaml.Node) diag.Pos {
	if n == nil {
		return diag.Pos{Path: p.path, Line: 1, Col: 1}
	}
	return diag.Pos{Path: p.path, Line: n.Line, Col: n.Column}
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// mapping reads a mapping of the given kind, reporting unknown and repeated keys.
func (p *parser) mapping(n *yaml.Node, kind string) map[string]*yaml.Node {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		p.errs.Errorf(p.pos(n), "%s: expected a mapping", kind)
		return nil
	}
	known := Fields[kind]
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case !slices.Contains(known, k.Value):
			p.errs.Errorf(p.pos(k), "unknown field %q in %s%s", k.Value, kind, diag.Suggest(k.Value, known))
		case out[k.Value] != nil:
			p.errs.Errorf(p.pos(k), "field %q repeated in %s", k.Value, kind)
		default:
			out[k.Value] = resolve(v)
		}
	}
	return out
}

// each walks a name → body mapping. A scalar body is shorthand for {doc: body}.
func (p *parser) each(n *yaml.Node, kind string, fn func(Ref, map[string]*yaml.Node, *yaml.Node)) {
	if n == nil {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.errs.Errorf(p.pos(n), "%ss: expected a mapping from name to %s", kind, kind)
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		if seen[k.Value] {
			p.errs.Errorf(p.pos(k), "%s %q declared twice", kind, k.Value)
			continue
		}
		seen[k.Value] = true
		var f map[string]*yaml.Node
		switch {
		case v.Kind == yaml.ScalarNode && v.Tag != "!!null" && slices.Contains(Fields[kind], "doc") && (kind == "event" || kind == "action" || kind == "guard"):
			f = map[string]*yaml.Node{"doc": v}
		case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
			f = map[string]*yaml.Node{}
		default:
			f = p.mapping(v, kind)
		}
		if f == nil {
			continue
		}
		fn(Ref{Name: k.Value, Pos: p.pos(k)}, f, k)
	}
}

func (p *parser) list(n *yaml.Node) []*yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errs.Errorf(p.pos(n), "expected a list")
		return nil
	}
	out := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		out[i] = resolve(c)
	}
	return out
}

func (p *parser) str(n *yaml.Node) string {
	if n == nil {
		return ""
	}
	if n.Kind != yaml.ScalarNode {
		p.errs.Errorf(p.pos(n), "expected text")
		return ""
	}
	return strings.TrimSpace(n.Value)
}

func (p *parser) ref(n *yaml.Node) Ref {
	return Ref{Name: p.str(n), Pos: p.pos(n)}
}

// refs reads one name or a list of names.
func (p *parser) refs(n *yaml.Node) []Ref {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.ScalarNode {
		return []Ref{p.ref(n)}
	}
	var out []Ref
	for _, c := range p.list(n) {
		out = append(out, p.ref(c))
	}
	return out
}

func (p *parser) boolean(n *yaml.Node) bool {
	switch n.Value {
	case "true":
		return true
	case "false":
		return false
	}
	p.errs.Errorf(p.pos(n), "expected true or false, found %q", n.Value)
	return false
}

func (p *parser) typ(n, owner *yaml.Node, allowed ...expr.Type) expr.Type {
	if n == nil {
		p.errs.Errorf(p.pos(owner), "%s needs a type", owner.Value)
		return expr.Invalid
	}
	t, ok := expr.ParseType(n.Value)
	if !ok || !slices.Contains(allowed, t) {
		names := make([]string, len(allowed))
		for i, a := range allowed {
			names[i] = a.String()
		}
		p.errs.Errorf(p.pos(n), "type %q is not one of %s%s", n.Value, strings.Join(names, ", "), diag.Suggest(n.Value, names))
		return expr.Invalid
	}
	return t
}

// bound reads an int, or for durations a Go duration literal.
func (p *parser) bound(n *yaml.Node, t expr.Type) *int64 {
	if n == nil {
		return nil
	}
	if t == expr.Duration {
		d, err := time.ParseDuration(n.Value)
		if err != nil {
			p.errs.Errorf(p.pos(n), "expected a duration such as 500ms, found %q", n.Value)
			return nil
		}
		v := int64(d)
		return &v
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		p.errs.Errorf(p.pos(n), "expected a whole number, found %q", n.Value)
		return nil
	}
	return &v
}

// expr reads an expression scalar; its position is that of its first
// character, past any opening quote.
func (p *parser) expr(n *yaml.Node) *Expr {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		p.errs.Errorf(p.pos(n), "expected an expression")
		return nil
	}
	pos := p.pos(n)
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		pos = pos.Shift(1)
	}
	return p.exprAt(n.Value, pos)
}

func (p *parser) exprAt(src string, pos diag.Pos) *Expr {
	e := &Expr{Src: src, Pos: pos}
	node, err := expr.Parse(src)
	if err != nil {
		ee := err.(*expr.Error)
		p.errs.Errorf(pos.Shift(ee.Off), "%s", ee.Msg)
		return e
	}
	e.Node = node
	return e
}

// steps reads a list of steps: "action", "arm timer", "cancel timer" or
// "set var = expr".
func (p *parser) steps(n *yaml.Node) []*Step {
	var out []*Step
	for _, c := range p.list(n) {
		if c.Kind != yaml.ScalarNode {
			p.errs.Errorf(p.pos(c), "a step is text: an action name, arm TIMER, cancel TIMER or set VAR = EXPR")
			continue
		}
		pos := p.pos(c)
		if c.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
			pos = pos.Shift(1)
		}
		out = append(out, p.step(c.Value, pos))
	}
	return out
}

func (p *parser) step(src string, pos diag.Pos) *Step {
	s := &Step{Pos: pos, Kind: StepAction, Name: Ref{Name: src, Pos: pos}, Src: src}
	word, rest, found := strings.Cut(src, " ")
	if !found {
		return s
	}
	restPos := pos.Shift(len(word) + 1)
	switch word {
	case "arm", "cancel":
		s.Kind = map[string]StepKind{"arm": StepArm, "cancel": StepCancel}[word]
		s.Name = Ref{Name: strings.TrimSpace(rest), Pos: restPos}
	case "set":
		name, value, ok := strings.Cut(rest, "=")
		if !ok {
			p.errs.Errorf(restPos, "set needs VAR = EXPR")
			return s
		}
		s.Kind = StepSet
		s.Name = Ref{Name: strings.TrimSpace(name), Pos: restPos}
		lead := len(value) - len(strings.TrimLeft(value, " "))
		s.Value = p.exprAt(strings.TrimSpace(value), restPos.Shift(len(name)+1+lead))
	default:
		p.errs.Errorf(pos, "unknown step %q: write an action name, arm TIMER, cancel TIMER or set VAR = EXPR", src)
	}
	return s
}

func (p *parser) branch(n *yaml.Node, f map[string]*yaml.Node) *Branch {
	b := &Branch{Pos: p.pos(n), If: p.expr(f["if"]), Do: p.steps(f["do"])}
	if to := f["to"]; to != nil {
		r := p.ref(to)
		b.To = &r
	}
	return b
}

func (p *parser) transition(n *yaml.Node) *Transition {
	f := p.mapping(n, "transition")
	if f == nil {
		return nil
	}
	t := &Transition{Doc: p.str(f["doc"]), From: p.refs(f["from"]), On: p.refs(f["on"]), Implements: p.refs(f["implements"])}
	if id := f["id"]; id != nil {
		t.ID = p.ref(id)
	} else {
		p.errs.Errorf(p.pos(n), "transition needs an id")
	}
	if len(t.From) == 0 {
		p.errs.Errorf(p.pos(n), "transition %s needs from", t.ID.Name)
	}
	if len(t.On) == 0 {
		p.errs.Errorf(p.pos(n), "transition %s needs on", t.ID.Name)
	}
	if r := f["reenter"]; r != nil {
		t.Reenter = p.boolean(r)
	}
	if bs := f["branches"]; bs != nil {
		for _, k := range []string{"if", "to", "do"} {
			if f[k] != nil {
				p.errs.Errorf(p.pos(f[k]), "transition %s has branches: put %s inside a branch", t.ID.Name, k)
			}
		}
		for _, bn := range p.list(bs) {
			if bf := p.mapping(bn, "branch"); bf != nil {
				t.Branches = append(t.Branches, p.branch(bn, bf))
			}
		}
		if len(t.Branches) == 0 {
			p.errs.Errorf(p.pos(bs), "transition %s: branches is empty", t.ID.Name)
		}
	} else {
		t.Branches = []*Branch{p.branch(n, f)}
	}
	return t
}

func (p *parser) invariant(n *yaml.Node) *Invariant {
	f := p.mapping(n, "invariant")
	if f == nil {
		return nil
	}
	inv := &Invariant{Doc: p.str(f["doc"]), Test: p.str(f["test"]), Always: p.expr(f["always"]), Implements: p.refs(f["implements"])}
	if id := f["id"]; id != nil {
		inv.ID = p.ref(id)
	} else {
		p.errs.Errorf(p.pos(n), "invariant needs an id")
	}
	if lt := f["leads_to"]; lt != nil {
		if lf := p.mapping(lt, "leads_to"); lf != nil {
			inv.LeadsTo = &LeadsTo{From: p.refs(lf["from"]), To: p.refs(lf["to"]), Within: p.expr(lf["within"]), When: p.expr(lf["when"]), Assumes: p.str(lf["assumes"]), Env: p.refs(lf["env"])}
			inv.LeadsTo.Recurring = p.refs(lf["recurring"])
			if fx := resolve(lf["fix"]); fx != nil {
				if fx.Kind != yaml.MappingNode {
					p.errs.Errorf(p.pos(fx), "fix: expected a mapping from param to value")
				} else {
					inv.LeadsTo.Fix, inv.LeadsTo.FixKeys = map[string]int64{}, map[string]Ref{}
					for i := 0; i+1 < len(fx.Content); i += 2 {
						k := fx.Content[i]
						val := int64(0)
						if v := resolve(fx.Content[i+1]); v.Value == "true" {
							val = 1
						} else if v.Value != "false" {
							if x := p.bound(v, expr.Int); x != nil {
								val = *x
							}
						}
						inv.LeadsTo.Fix[k.Value], inv.LeadsTo.FixKeys[k.Value] = val, p.ref(k)
					}
				}
			}
			if len(inv.LeadsTo.From) == 0 || len(inv.LeadsTo.To) == 0 || inv.LeadsTo.Within == nil {
				p.errs.Errorf(p.pos(lt), "leads_to needs from, to and within")
			}
		}
	}
	if on := f["only"]; on != nil {
		if of := p.mapping(on, "only"); of != nil {
			inv.Only = &Only{From: p.refs(of["from"]), To: p.refs(of["to"]), On: p.refs(of["on"])}
			if len(inv.Only.From) == 0 || len(inv.Only.To) == 0 || len(inv.Only.On) == 0 {
				p.errs.Errorf(p.pos(on), "only needs from, to and on")
			}
		}
	}
	kinds := 0
	for _, set := range []bool{inv.Always != nil, inv.LeadsTo != nil, inv.Only != nil} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		p.errs.Errorf(p.pos(n), "invariant %s needs exactly one of always, leads_to and only", inv.ID.Name)
	}
	return inv
}

// verify reads the model's verify section.
func (p *parser) verify(n *yaml.Node, v *Verify) {
	f := p.mapping(n, "verify")
	if f == nil {
		return
	}
	p.each(f["answers"], "answers", func(name Ref, af map[string]*yaml.Node, an *yaml.Node) {
		a := &Answers{Ref: name, After: p.refs(af["after"]), Events: p.refs(af["events"]), Ends: p.refs(af["ends"])}
		a.Single = af["single"] != nil && p.boolean(af["single"])
		if t := af["timer"]; t != nil {
			r := p.ref(t)
			a.Timer = &r
		}
		if len(a.After) == 0 || len(a.Events) == 0 {
			p.errs.Errorf(p.pos(an), "answers %s needs after (actions) and events", name.Name)
		}
		v.Answers = append(v.Answers, a)
	})
	v.Keys = map[string]Ref{}
	v.Requires = p.expr(f["requires"])
	if d := resolve(f["domains"]); d != nil {
		if d.Kind != yaml.MappingNode {
			p.errs.Errorf(p.pos(d), "domains: expected a mapping from param to a list of values")
		} else {
			v.Domains = map[string][]int64{}
			for i := 0; i+1 < len(d.Content); i += 2 {
				k := d.Content[i]
				v.Keys[k.Value] = p.ref(k)
				var vals []int64
				for _, e := range p.list(d.Content[i+1]) {
					if x := p.bound(e, expr.Int); x != nil {
						vals = append(vals, *x)
					}
				}
				if len(vals) == 0 {
					p.errs.Errorf(p.pos(k), "domain of %s is empty", k.Value)
				}
				v.Domains[k.Value] = vals
			}
		}
	}
	if d := resolve(f["varies"]); d != nil {
		if d.Kind != yaml.MappingNode {
			p.errs.Errorf(p.pos(d), "varies: expected a mapping from param to a list of actions (or event)")
		} else {
			v.Varies = map[string][]Ref{}
			for i := 0; i+1 < len(d.Content); i += 2 {
				v.Keys[d.Content[i].Value] = p.ref(d.Content[i])
				v.Varies[d.Content[i].Value] = p.refs(d.Content[i+1])
			}
		}
	}
}

// Describe returns a one-line description of a step, for docs.
func (s *Step) String() string { return fmt.Sprint(s.Src) }
