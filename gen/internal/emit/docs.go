package emit

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sipfailover/sipfailover/gen/internal/expr"
	"github.com/sipfailover/sipfailover/gen/internal/model"
)

// edge is one arrow of a diagram: a branch taken from one or more states.
type edge struct {
	from     []string // one state, or every state of a cluster
	cluster  string   // set when the arrow leaves a whole cluster
	to       string
	events   []string
	guard    string
	steps    []string
	id       string
	internal bool // a stay without re-entry: drawn inside the state, not as an arrow
}

// diagramSteps drops cancel steps: bookkeeping that the tables still show.
func diagramSteps(steps []*model.Step) []string {
	var out []string
	for _, s := range steps {
		if s.Kind != model.StepCancel {
			out = append(out, s.Src)
		}
	}
	return out
}

// clusters groups states by their first tag, in model order.
func clusters(m *model.Model) (order []string, members map[string][]string) {
	members = map[string][]string{}
	for _, s := range m.States {
		if len(s.Tags) == 0 {
			continue
		}
		tag := s.Tags[0].Name
		if _, ok := members[tag]; !ok {
			order = append(order, tag)
		}
		members[tag] = append(members[tag], s.Name)
	}
	return order, members
}

// edges lists the diagram's arrows in model order. An arrow that leaves every
// state of a cluster for the same place is drawn once, from the cluster.
func edges(m *model.Model) []edge {
	order, members := clusters(m)
	var out []edge
	for _, t := range m.Transitions {
		for k, b := range t.Branches {
			guard := ""
			if b.If != nil {
				guard = b.If.Src
			} else if len(t.Branches) > 1 {
				guard = "else"
			}
			base := edge{events: model.Names(t.On), guard: guard, steps: diagramSteps(b.Do), id: branchID(t, k)}
			from := model.Names(t.From)
			if b.To != nil {
				for _, tag := range order {
					if len(members[tag]) > 1 && containsAll(from, members[tag]) && !slices.Contains(members[tag], b.To.Name) {
						e := base
						e.from, e.cluster, e.to = members[tag], tag, b.To.Name
						out = append(out, e)
						from = slices.DeleteFunc(from, func(s string) bool { return slices.Contains(members[tag], s) })
					}
				}
			}
			for _, fr := range from {
				e := base
				e.from, e.to = []string{fr}, b.Target(fr)
				e.internal = e.to == fr && !t.Reenter
				out = append(out, e)
			}
		}
	}
	return out
}

// internalEdges keeps the stays, which the diagrams write inside their state.
func internalEdges(all []edge) []edge {
	var out []edge
	for _, e := range all {
		if e.internal {
			out = append(out, e)
		}
	}
	return out
}

func containsAll(set, items []string) bool {
	for _, it := range items {
		if !slices.Contains(set, it) {
			return false
		}
	}
	return true
}

// label is the text of an arrow: events [guard] / steps, on lines of its own.
func (e edge) label(sep string) string { return e.labelIn(sep, 48) }

// labelIn is label with lines of about width characters.
func (e edge) labelIn(sep string, width int) string {
	s := wrap(strings.Join(e.events, ", "), width, sep)
	if e.guard != "" {
		s += sep + "[" + e.guard + "]"
	}
	if len(e.steps) > 0 {
		s += sep + "/ " + wrap(strings.Join(e.steps, ", "), width, sep)
	}
	return s
}

// wrap breaks text after commas so no line is much longer than width.
func wrap(text string, width int, sep string) string {
	var lines []string
	line := ""
	for _, part := range strings.SplitAfter(text, ", ") {
		if line != "" && len(line)+len(part) > width {
			lines = append(lines, strings.TrimSpace(line))
			line = ""
		}
		line += part
	}
	return strings.Join(append(lines, strings.TrimSpace(line)), sep)
}

// stateLines describes a state inside its box: timers, entry and exit steps,
// and the transitions that stay in it.
func stateLines(s *model.State, m *model.Model, internal []edge) []string {
	var out []string
	for _, r := range s.After {
		out = append(out, "after "+r.Name+" = "+timerText(m.Timer(r.Name)))
	}
	if len(s.Entry) > 0 {
		out = append(out, "entry / "+strings.Join(stepList(s.Entry), ", "))
	}
	if len(s.Exit) > 0 {
		out = append(out, "exit / "+strings.Join(stepList(s.Exit), ", "))
	}
	for _, e := range internal {
		if e.from[0] == s.Name {
			out = append(out, e.label(" "))
		}
	}
	return out
}

func timerText(t *model.Timer) string {
	if t == nil {
		return "?"
	}
	s := t.Duration.Src
	if t.Enabled != nil {
		s += " if " + t.Enabled.Src
	}
	if t.Jitter != nil {
		s += fmt.Sprintf(" (jitter -%s%%)", t.Jitter.Src)
	}
	return s
}

func mermaidID(name string) string { return strings.ReplaceAll(name, ".", "_") }

// mermaidText makes s safe in a Mermaid label without HTML entities, which
// a renderer may print as they are: the few characters Mermaid's grammar
// takes for its own become look-alikes.
func mermaidText(s string) string {
	r := strings.NewReplacer("<=", "≤", ">=", "≥", "<", "＜", ">", "＞", ";", ",", "\"", "”", "{", "(", "}", ")", "#", "№")
	return r.Replace(s)
}

// MermaidFrom returns the part of the model that leaves state s as a
// Mermaid stateDiagram-v2, laid out left to right: s with what happens
// inside it in a note, and each arrow out of it (from s alone, or from a
// group of states s belongs to) to its target. One such picture a state
// keeps the detail of Mermaid and Dot readable at a page's width, where
// the whole model in one picture is not.
func MermaidFrom(m *model.Model, s *model.State) string {
	var b strings.Builder
	b.WriteString("stateDiagram-v2\n    direction LR\n")
	all := edges(m)
	fmt.Fprintf(&b, "    state \"%s\" as %s\n", s.Name, mermaidID(s.Name))
	if s.Initial {
		fmt.Fprintf(&b, "    [*] --> %s\n", mermaidID(s.Name))
	}
	// One arrow a target, its transitions a line each: Mermaid lays
	// parallel arrows' labels over each other.
	var targets []string
	labels := map[string][]string{}
	for _, e := range all {
		if e.internal || !slices.Contains(e.from, s.Name) {
			continue
		}
		if labels[e.to] == nil {
			targets = append(targets, e.to)
		}
		labels[e.to] = append(labels[e.to], mermaidText(e.labelIn(" ", 30)))
	}
	for _, to := range targets {
		if to != s.Name {
			fmt.Fprintf(&b, "    state \"%s\" as %s\n", to, mermaidID(to))
		}
		fmt.Fprintf(&b, "    %s --> %s : %s\n", mermaidID(s.Name), mermaidID(to), strings.Join(labels[to], "<br>"))
	}
	if s.Final {
		fmt.Fprintf(&b, "    %s --> [*]\n", mermaidID(s.Name))
	}
	return b.String()
}

func dotQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\x00", `\l`).Replace(s) + `"`
}

// Dot returns the model as a Graphviz digraph.
func Dot(m *model.Model) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "// Code generated by %s from %s. DO NOT EDIT.\n", Tool, m.Path)
	fmt.Fprintf(&b, "digraph %s {\n", dotQuote(m.Name.Name))
	b.WriteString("    rankdir=TB; compound=true; nodesep=0.5; ranksep=0.6;\n")
	b.WriteString("    node [shape=box, style=\"rounded,filled\", fillcolor=\"#f5f7fa\", fontname=\"Helvetica\", fontsize=10];\n")
	b.WriteString("    edge [fontname=\"Helvetica\", fontsize=8, color=\"#555555\"];\n")
	b.WriteString("    __start [shape=point, width=0.15, label=\"\"];\n")
	all := edges(m)
	internal := internalEdges(all)
	node := func(s *model.State, indent string) {
		// \x00 becomes \l: each line of the box is left-aligned under the name.
		label := s.Name + "\n"
		if lines := stateLines(s, m, internal); len(lines) > 0 {
			label += strings.Join(lines, "\x00") + "\x00"
		}
		// The id names the state's group in the SVG, so a page can highlight
		// the state a line is in.
		attrs := "label=" + dotQuote(label) + ", id=" + dotQuote("state_"+s.Name)
		if s.Final {
			attrs += ", peripheries=2"
		}
		fmt.Fprintf(&b, "%s%s [%s];\n", indent, dotQuote(s.Name), attrs)
	}
	order, members := clusters(m)
	for _, tag := range order {
		fmt.Fprintf(&b, "    subgraph %s {\n        label=%s; style=\"rounded,dashed\"; color=\"#8899aa\"; fontname=\"Helvetica\"; fontsize=10;\n", dotQuote("cluster_"+tag), dotQuote(tag))
		for _, name := range members[tag] {
			node(m.State(name), "        ")
		}
		b.WriteString("    }\n")
	}
	for _, s := range m.States {
		if len(s.Tags) == 0 {
			node(s, "    ")
		}
	}
	fmt.Fprintf(&b, "    __start -> %s;\n", dotQuote(m.Initial().Name))
	for _, e := range all {
		if e.internal {
			continue
		}
		attrs := fmt.Sprintf("label=%s, tooltip=%s", dotQuote(e.label("\n")), dotQuote(e.id))
		if e.cluster != "" {
			attrs += ", ltail=" + dotQuote("cluster_"+e.cluster)
		}
		fmt.Fprintf(&b, "    %s -> %s [%s];\n", dotQuote(e.from[0]), dotQuote(e.to), attrs)
	}
	b.WriteString("}\n")
	return []byte(b.String())
}

func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace(s)
}

func code(s string) string {
	if s == "" {
		return ""
	}
	return "`" + strings.ReplaceAll(s, "|", `\|`) + "`"
}

func codes(items []string) string {
	out := make([]string, len(items))
	for i, s := range items {
		out[i] = code(s)
	}
	return strings.Join(out, ", ")
}

func bound(v *int64, t expr.Type) string {
	if v == nil {
		return ""
	}
	if t == expr.Duration {
		return time.Duration(*v).String()
	}
	return fmt.Sprint(*v)
}

// Markdown returns docs/<model>.md: the diagram, and a table for every kind
// of element. modelLink is the model file's path relative to docs/.
func Markdown(m *model.Model, modelLink string) []byte {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("<!-- Code generated by %s from %s. DO NOT EDIT. -->", Tool, m.Path)
	p("")
	p("# The %s machine", m.Name.Name)
	p("")
	p("%s", m.Doc)
	p("")
	p("Generated from [`%s`](%s): edit the model, run `go generate ./...`, and this page, `%s.dot`, `%s.svg`, `%s-overview.svg` and `fsm/%s_gen.go` follow.", m.Path, modelLink, m.Name.Name, m.Name.Name, m.Name.Name, m.Name.Name)
	p("")
	p("The overview: the states and the events (with their conditions) that move the machine between them, one arrow a pair of states, where an event that several branches take is written once with their conditions (`[a | else]`); arrows from a dot in a dashed frame leave from any state of the group.")
	p("")
	p("![The %s machine, overview](%s-overview.svg)", m.Name.Name, m.Name.Name)
	p("")
	p("The detail, state by state below, each picture with the arrows that leave the state; [%s.svg](%s.svg) draws all of it at once, to zoom in. Arrows read `event [condition] / steps`; `else` is the branch taken when no condition above it holds. A state's `after` timers start on entry and stop on exit; when one fires the machine gets `timer.<name>`.", m.Name.Name, m.Name.Name)
	p("")
	p("Graphviz sources: [%s.dot](%s.dot), [%s-overview.dot](%s-overview.dot).", m.Name.Name, m.Name.Name, m.Name.Name, m.Name.Name)
	p("")
	internal := internalEdges(edges(m))
	for _, s := range m.States {
		p("### From `%s`", s.Name)
		p("")
		p("%s", s.Doc)
		p("")
		p("```mermaid")
		b.WriteString(MermaidFrom(m, s))
		p("```")
		p("")
		if lines := stateLines(s, m, internal); len(lines) > 0 {
			p("Inside it:")
			p("")
			for _, l := range lines {
				p("- %s", code(l))
			}
			p("")
		}
	}

	p("## States")
	p("")
	p("| state | tags | timers and steps | ignores | doc |")
	p("|---|---|---|---|---|")
	for _, s := range m.States {
		name := code(s.Name)
		switch {
		case s.Initial:
			name += " (initial)"
		case s.Final:
			name += " (final)"
		}
		p("| %s | %s | %s | %s | %s |", name, codes(model.Names(s.Tags)), cell(strings.Join(stateLines(s, m, nil), "; ")), codes(model.Names(s.Ignore)), cell(s.Doc))
	}
	p("")
	p("## Transitions")
	p("")
	p("| id | from | event | condition | to | steps | implements | doc |")
	p("|---|---|---|---|---|---|---|---|")
	for _, t := range m.Transitions {
		for k, br := range t.Branches {
			guard := ""
			if br.If != nil {
				guard = br.If.Src
			} else if len(t.Branches) > 1 {
				guard = "else"
			}
			to := "(stays)"
			if br.To != nil {
				to = code(br.To.Name)
			}
			if t.Reenter && br.To == nil {
				to = "(re-enters)"
			}
			doc, impl := "", ""
			if k == 0 {
				doc, impl = t.Doc, strings.Join(model.Names(t.Implements), ", ")
			}
			p("| %s | %s | %s | %s | %s | %s | %s | %s |", code(branchID(t, k)), codes(model.Names(t.From)), codes(model.Names(t.On)), code(guard), to, codes(stepList(br.Do)), impl, cell(doc))
		}
	}
	p("")
	p("## Events")
	p("")
	p("| event | doc |")
	p("|---|---|")
	for _, e := range m.Events {
		p("| %s | %s |", code(e.Name), cell(e.Doc))
	}
	p("")
	p("## Timers")
	p("")
	p("| timer | duration | enabled when | jitter | implements | doc |")
	p("|---|---|---|---|---|---|")
	for _, t := range m.Timers {
		enabled := "always"
		if t.Enabled != nil {
			enabled = code(t.Enabled.Src)
		}
		jitter := ""
		if t.Jitter != nil {
			jitter = t.Jitter.Src + "%"
			if _, err := strconv.Atoi(t.Jitter.Src); err != nil {
				jitter = code(t.Jitter.Src) + " %"
			}
		}
		p("| %s | %s | %s | %s | %s | %s |", code(t.Name), code(t.Duration.Src), enabled, jitter, strings.Join(model.Names(t.Implements), ", "), cell(t.Doc))
	}
	p("")
	p("## Actions")
	p("")
	p("The runtime implements each as a method of `fsm.%sActions`.", GoName(m))
	p("")
	p("| action | Go method | doc |")
	p("|---|---|---|")
	for _, a := range m.Actions {
		p("| %s | `%s()` | %s |", code(a.Name), model.GoName(a.Name), cell(a.Doc))
	}
	p("")
	if len(m.Guards) > 0 {
		p("## Guards")
		p("")
		p("Facts only the runtime knows, asked as methods of `fsm.%sGuards`.", GoName(m))
		p("")
		p("| guard | Go method | doc |")
		p("|---|---|---|")
		for _, g := range m.Guards {
			p("| %s | `%s()` | %s |", code(g.Name), model.GoName(g.Name), cell(g.Doc))
		}
		p("")
	}
	p("## Params")
	p("")
	p("Settings and facts the runtime supplies in `fsm.%sParams`.", GoName(m))
	p("")
	p("| param | type | min | max | setting | doc |")
	p("|---|---|---|---|---|---|")
	for _, pr := range m.Params {
		p("| %s | %s | %s | %s | %s | %s |", code(pr.Name), pr.Type, bound(pr.Min, pr.Type), bound(pr.Max, pr.Type), cell(pr.Setting), cell(pr.Doc))
	}
	p("")
	if len(m.Vars) > 0 {
		p("## Variables")
		p("")
		p("| var | type | range | initially | doc |")
		p("|---|---|---|---|---|")
		for _, v := range m.Vars {
			rng, init := "", fmt.Sprint(v.Init)
			if v.Type == expr.Int {
				rng = fmt.Sprintf("%d to %d", v.Min, v.Max)
			} else {
				init = fmt.Sprint(v.Init == 1)
			}
			p("| %s | %s | %s | %s | %s |", code(v.Name), v.Type, rng, init, cell(v.Doc))
		}
		p("")
	}
	if len(m.Derived) > 0 {
		p("## Derived values")
		p("")
		p("| name | value | doc |")
		p("|---|---|---|")
		for _, d := range m.Derived {
			p("| %s | %s | %s |", code(d.Name), code(d.Expr.Src), cell(d.Doc))
		}
		p("")
	}
	p("## Invariants")
	p("")
	p("| id | statement | checked by | doc |")
	p("|---|---|---|---|")
	for _, inv := range m.Invariants {
		stmt := ""
		by := "`CheckAlways`, `sipfailover verify`"
		switch {
		case inv.Always != nil:
			stmt = "always " + code(inv.Always.Src)
		case inv.Only != nil:
			o := inv.Only
			stmt = fmt.Sprintf("from %s to %s only on %s", codes(model.Names(o.From)), codes(model.Names(o.To)), codes(model.Names(o.On)))
			by = "`sipfailover verify`"
		default:
			lt := inv.LeadsTo
			stmt = fmt.Sprintf("from %s reach %s within %s", codes(model.Names(lt.From)), codes(model.Names(lt.To)), code(lt.Within.Src))
			if lt.When != nil {
				stmt += ", when " + code(lt.When.Src)
			}
			if lt.Assumes != "" {
				stmt += ", assuming " + cell(lt.Assumes)
			}
			by = "`sipfailover verify` (untimed)"
		}
		if inv.Test != "" {
			by = code(inv.Test) + ", " + by
		}
		p("| %s | %s | %s | %s |", inv.ID.Name, stmt, by, cell(inv.Doc))
	}
	p("")
	p("## Requirements")
	p("")
	p("Where each requirement and invariant of docs/requirements.md shows in this model.")
	p("")
	p("| id | elements |")
	p("|---|---|")
	trace := Trace(m)
	for _, id := range sortedIDs(trace) {
		p("| %s | %s |", id, strings.Join(trace[id], ", "))
	}
	return []byte(b.String())
}

// GoName is the Go name of the machine.
func GoName(m *model.Model) string { return model.GoName(m.Name.Name) }

// Trace maps each requirement or invariant id to the model elements that
// name it: transitions, timers and invariants.
func Trace(m *model.Model) map[string][]string {
	out := map[string][]string{}
	add := func(ids []model.Ref, what string) {
		for _, r := range ids {
			if !slices.Contains(out[r.Name], what) {
				out[r.Name] = append(out[r.Name], what)
			}
		}
	}
	add(m.Implements, "the machine as a whole")
	for _, t := range m.Transitions {
		add(t.Implements, "transition `"+t.ID.Name+"`")
	}
	for _, t := range m.Timers {
		add(t.Implements, "timer `"+t.Name+"`")
	}
	for _, inv := range m.Invariants {
		add([]model.Ref{inv.ID}, "invariant `"+inv.ID.Name+"`")
		add(inv.Implements, "invariant `"+inv.ID.Name+"`")
	}
	return out
}

// sortedIDs orders R1 < R2 < R10 < I1 < I2.
func sortedIDs(m map[string][]string) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int {
		if a[0] != b[0] {
			return int(b[0]) - int(a[0]) // R before I
		}
		var x, y int
		fmt.Sscan(a[1:], &x)
		fmt.Sscan(b[1:], &y)
		if x != y {
			return x - y
		}
		return strings.Compare(a, b)
	})
	return ids
}

// OverviewDot returns the model's overview as a Graphviz digraph: its
// states, grouped by tag, and one arrow a pair of states listing the events
// (with their conditions) that take the machine from one to the other, and
// no steps. It is drawn to be read at a page's width; Dot draws the detail.
func OverviewDot(m *model.Model) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "// Code generated by %s from %s. DO NOT EDIT.\n", Tool, m.Path)
	fmt.Fprintf(&b, "digraph %s {\n", dotQuote(m.Name.Name+"_overview"))
	b.WriteString("    rankdir=TB; nodesep=0.02; ranksep=0.25; margin=0.05; concentrate=true;\n")
	b.WriteString("    node [shape=box, style=\"rounded,filled\", fillcolor=\"#f5f7fa\", fontname=\"Helvetica\", fontsize=12, margin=\"0.1,0.03\"];\n")
	b.WriteString("    edge [fontname=\"Helvetica\", fontsize=11, color=\"#667788\", arrowsize=0.7];\n")
	b.WriteString("    __start [shape=point, width=0.12, label=\"\"];\n")
	order, members := clusters(m)
	node := func(s *model.State, indent string) {
		attrs := "id=" + dotQuote("state_"+s.Name) + ", tooltip=" + dotQuote(s.Doc)
		if s.Final {
			attrs += ", peripheries=2"
		}
		fmt.Fprintf(&b, "%s%s [%s];\n", indent, dotQuote(s.Name), attrs)
	}
	all := edges(m)
	leaves := map[string]bool{} // clusters that arrows leave as a whole
	for _, e := range all {
		if !e.internal && e.cluster != "" {
			leaves[e.cluster] = true
		}
	}
	for _, tag := range order {
		fmt.Fprintf(&b, "    subgraph %s {\n        label=%s; style=\"rounded,dashed\"; color=\"#8899aa\"; fontname=\"Helvetica\"; fontsize=12;\n", dotQuote("cluster_"+tag), dotQuote(tag))
		for _, name := range members[tag] {
			node(m.State(name), "        ")
		}
		if leaves[tag] {
			// Arrows that leave the whole group start at this dot in it.
			fmt.Fprintf(&b, "        %s [shape=point, width=0.08, label=\"\", tooltip=%s];\n", dotQuote("any_"+tag), dotQuote("any state of "+tag))
		}
		b.WriteString("    }\n")
	}
	for _, s := range m.States {
		if len(s.Tags) == 0 {
			node(s, "    ")
		}
	}
	fmt.Fprintf(&b, "    __start -> %s;\n", dotQuote(m.Initial().Name))
	type pair struct{ from, cluster, to string }
	var pairs []pair
	// Per arrow, its events in model order, each with the guards of the
	// branches that take them there: one event by two branches to one
	// place is written once, "ev [g1 | g2]".
	events := map[pair][]string{}
	guards := map[pair]map[string][]string{}
	for _, e := range all {
		if e.internal {
			continue
		}
		p := pair{e.from[0], e.cluster, e.to}
		if e.cluster != "" {
			p.from = "any_" + e.cluster
		}
		if _, seen := events[p]; !seen {
			pairs = append(pairs, p)
			guards[p] = map[string][]string{}
		}
		ev := strings.Join(e.events, ", ")
		if _, seen := guards[p][ev]; !seen {
			events[p] = append(events[p], ev)
		}
		if !slices.Contains(guards[p][ev], e.guard) {
			guards[p][ev] = append(guards[p][ev], e.guard)
		}
	}
	for _, p := range pairs {
		// Events under the same guards share them: "ev1, ev2 [g]".
		var order []string
		byGuard := map[string][]string{}
		for _, ev := range events[p] {
			g := ""
			if gs := guards[p][ev]; !slices.Contains(gs, "") {
				g = " [" + strings.Join(gs, " | ") + "]"
			}
			if _, seen := byGuard[g]; !seen {
				order = append(order, g)
			}
			byGuard[g] = append(byGuard[g], ev)
		}
		var labels []string
		for _, g := range order {
			labels = append(labels, strings.Join(byGuard[g], ", ")+g)
		}
		fmt.Fprintf(&b, "    %s -> %s [label=%s];\n", dotQuote(p.from), dotQuote(p.to), dotQuote(wrapWords(strings.Join(labels, ", "), 14)))
	}
	b.WriteString("}\n")
	return []byte(b.String())
}

// wrapWords breaks text between words so no line is much longer than
// width: narrow labels, for a drawing that must fit a page.
func wrapWords(text string, width int) string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return strings.Join(append(lines, line), "\n")
}
