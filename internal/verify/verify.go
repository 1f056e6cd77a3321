// Package verify checks the generated Promela of the models (verify/*.pml)
// with the SPIN model checker: every reachable state of each machine in
// its environment, against the model's invariants. It runs spin -a, builds
// pan with the C compiler and runs it, once for the safety properties of a
// model and once for each of its leads-to invariants, and turns a
// counterexample into the sequence of model events that breaks it.
package verify

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Options bound a check.
type Options struct {
	Depth    int           // pan's search depth (-m); 0: 2,000,000
	MemoryMB int           // pan's memory limit; 0: 4096
	Timeout  time.Duration // per property; 0: 10 minutes
}

// Property is one check of one model: its safety assertions together
// ("safety"), or one leads-to invariant as LTL.
type Property struct {
	Model string // the machine
	ID    string // "safety" or the invariant's id
	LTL   bool
}

func (p Property) String() string { return p.Model + "/" + p.ID }

// Result is what SPIN said of a property.
type Result struct {
	Property
	Holds    bool
	States   int64   // states stored
	Depth    int64   // depth reached
	MemoryMB float64 // total actual memory usage
	Time     time.Duration
	Trail    []string // a violation, as model steps; nil when it holds

	// Counterexample is the violation as SPIN printed it, read: for a
	// safety property the shortest one (a breadth-first search); for a
	// leads-to invariant the cycle that never reaches Goal.
	Counterexample *Run `json:",omitempty"`
	// Goal is, for a leads-to invariant, the states it leads to.
	Goal []string `json:",omitempty"`
	// Prefix is, for a violated leads-to invariant, the shortest way to
	// where the counterexample's obligation begins (the first state the
	// invariant leads from, entered under its assumptions, with the same
	// params): with it a replay need not repeat the counterexample's
	// detours.
	Prefix *Run `json:",omitempty"`
}

// Run is a path through a model as SPIN printed it.
type Run struct {
	Params    map[string]int64 // before the first event
	Steps     []SimStep
	Assume    int    // the first step under the invariant's assumptions; -1: none
	Cycle     int    // the first step of the cycle that repeats forever; -1: none
	Violation string // the assertion that failed, if one did
}

// Lines is the run as text, a line per event, with the params when they
// change and the moments the assumptions and the cycle begin.
func (r *Run) Lines() []string {
	var out []string
	last := map[string]int64{}
	params := func(p map[string]int64) {
		var changed []string
		for _, k := range slices.Sorted(maps.Keys(p)) {
			if v, ok := last[k]; !ok || v != p[k] {
				last[k] = p[k]
				changed = append(changed, fmt.Sprintf("%s=%d", k, p[k]))
			}
		}
		if len(changed) > 0 {
			out = append(out, "params "+strings.Join(changed, " "))
		}
	}
	params(r.Params)
	for i, s := range r.Steps {
		if i == r.Assume {
			out = append(out, "(from here on the environment behaves as the invariant assumes)")
		}
		if i == r.Cycle {
			out = append(out, "(from here the run repeats forever)")
		}
		params(s.Before)
		out = append(out, fmt.Sprintf("%s --%s--> %s", s.From, s.Event, s.To))
		params(s.After)
	}
	if r.Violation != "" {
		out = append(out, r.Violation)
	}
	return out
}

// Tools says whether spin and a C compiler are here, and which is missing.
func Tools() error {
	for _, t := range []string{"spin", "cc"} {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("%s is missing: .ci/install-deps spin gcc installs SPIN and a C compiler", t)
		}
	}
	return nil
}

var propRE = regexp.MustCompile(`defined\(PROP_(\w+)\)`)

// Properties lists the properties of the Promela file path (verify/<m>.pml).
func Properties(path string) ([]Property, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := strings.TrimSuffix(filepath.Base(path), ".pml")
	props := []Property{{Model: m, ID: "safety"}}
	seen := map[string]bool{}
	for _, sub := range propRE.FindAllStringSubmatch(string(src), -1) {
		if !seen[sub[1]] && bytes.Contains(src, []byte("ltl "+sub[1]+" ")) {
			seen[sub[1]] = true
			props = append(props, Property{Model: m, ID: sub[1], LTL: true})
		}
	}
	return props, nil
}

// Check runs SPIN on one property of the Promela file path.
func Check(ctx context.Context, path string, p Property, o Options) (Result, error) {
	if o.Depth == 0 {
		o.Depth = 2000000
	}
	if o.MemoryMB == 0 {
		o.MemoryMB = 4096
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	res := Result{Property: p}
	dir, err := os.MkdirTemp("", "sipfailover-verify-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	src, err := os.ReadFile(path)
	if err != nil {
		return res, err
	}
	pml := filepath.Base(path)
	if err := os.WriteFile(filepath.Join(dir, pml), src, 0o644); err != nil {
		return res, err
	}
	var defs []string
	if p.LTL {
		defs = append(defs, "-DPROP_"+p.ID)
	}
	run := func(name string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			return string(out), fmt.Errorf("%s: %s: no verdict within %v", p, name, o.Timeout)
		}
		if err != nil {
			return string(out), fmt.Errorf("%s: %s %s: %v\n%s", p, name, strings.Join(args, " "), err, lastLines(string(out), 20))
		}
		return string(out), nil
	}
	if _, err := run("spin", append(defs, "-a", pml)...); err != nil {
		return res, err
	}
	cflags := []string{"-O2", "-w", fmt.Sprintf("-DMEMLIM=%d", o.MemoryMB), "-DVECTORSZ=4096", "-o", "pan", "pan.c"}
	panArgs := []string{"-n", fmt.Sprintf("-m%d", o.Depth)}
	if p.LTL {
		// Weak fairness needs room for every process of the environment.
		// The rendezvous that hands events to the machine rules out partial
		// order reduction under fairness.
		cflags = append([]string{"-DNOREDUCE", fmt.Sprintf("-DNFAIR=%d", bytes.Count(src, []byte("proctype "))+2)}, cflags...)
		panArgs = append(panArgs, "-a", "-f")
	} else {
		cflags = append([]string{"-DSAFETY"}, cflags...)
	}
	if _, err := run("cc", cflags...); err != nil {
		return res, err
	}
	start := time.Now()
	out, err := run("./pan", panArgs...)
	res.Time = time.Since(start)
	if err != nil {
		return res, err
	}
	if err := res.read(out); err != nil {
		return res, fmt.Errorf("%s: %w\n%s", p, err, lastLines(out, 20))
	}
	if res.Holds {
		return res, nil
	}
	if !p.LTL {
		// The depth-first search found a violation; a breadth-first one
		// finds the shortest way to one, which is what a reader wants.
		if _, err := run("cc", append([]string{"-DBFS"}, cflags...)...); err != nil {
			return res, err
		}
		if _, err := run("./pan", panArgs...); err != nil {
			return res, err
		}
	}
	trail, err := run("spin", append(defs, "-t", pml)...)
	if err != nil {
		return res, err
	}
	res.Counterexample = readRun(src, trail)
	res.Trail = res.Counterexample.Lines()
	if p.LTL {
		var from []string
		from, res.Goal = leadsTo(src, p.ID)
		if res.Prefix, err = prefix(ctx, dir, pml, src, res.Counterexample, from, fixes(src, p.ID), o); err != nil {
			return res, fmt.Errorf("%s: the shortest way to the counterexample's cycle: %w", p, err)
		}
	}
	return res, nil
}

// leadsTo reads the states a leads-to invariant leads from and to from
// its LTL: [] ((good && (from) && (when)) -> <> (to)).
func leadsTo(src []byte, id string) (from, to []string) {
	m := regexp.MustCompile(`(?m)^ltl ` + regexp.QuoteMeta(id) + ` \{.*\(good && \((.*?)\) && .*-> <> \((.*)\)\) \}$`).FindSubmatch(src)
	if m == nil {
		return nil, nil
	}
	states := func(b []byte) []string {
		var out []string
		for _, st := range stateRE.FindAllSubmatch(b, -1) {
			out = append(out, string(st[1]))
		}
		return out
	}
	return states(m[1]), states(m[2])
}

var stateRE = regexp.MustCompile(`state == S_(\w+)`)

// fixes are the params a leads-to invariant holds while it is checked,
// as the Promela source defines them for it ("#define FIX_calls_up 0").
func fixes(src []byte, id string) []string {
	var out []string
	in := false
	for _, line := range strings.Split(string(src), "\n") {
		switch {
		case strings.Contains(line, "defined(PROP_"):
			in = strings.Contains(line, "defined(PROP_"+id+")")
		case strings.HasPrefix(line, "#endif"):
			in = false
		case in && strings.HasPrefix(line, "#define FIX_"):
			out = append(out, line)
		}
	}
	return out
}

// prefix searches breadth-first for the shortest safety run to where
// run's obligation begins: the first state of from that it enters under
// the invariant's assumptions (its fixed params among them), with the
// same params. Which detours the counterexample took to get there does
// not matter to the property.
func prefix(ctx context.Context, dir, pml string, src []byte, run *Run, from, fixed []string, o Options) (*Run, error) {
	params := maps.Clone(run.Params)
	at := -1
	for i, s := range run.Steps {
		maps.Copy(params, s.Before)
		maps.Copy(params, s.After)
		if i >= run.Assume && run.Assume >= 0 && slices.Contains(from, s.To) {
			at = i
			break
		}
	}
	if at < 0 {
		return nil, errors.New("the counterexample never enters a state the invariant leads from")
	}
	conds := []string{"state == S_" + run.Steps[at].To}
	for _, k := range slices.Sorted(maps.Keys(params)) {
		conds = append(conds, fmt.Sprintf("p_%s == %d", k, params[k]))
	}
	// Defined in the source: spin hands -D options to the preprocessor
	// through a shell.
	reach := "reach_" + pml
	head := strings.Join(append(fixed, "#define REACH ("+strings.Join(conds, " && ")+")"), "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, reach), append([]byte(head), src...), 0o644); err != nil {
		return nil, err
	}
	cmd := func(name string, args ...string) error {
		c := exec.CommandContext(ctx, name, args...)
		c.Dir = dir
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v\n%s", name, err, lastLines(string(out), 20))
		}
		return nil
	}
	if err := cmd("spin", "-a", reach); err != nil {
		return nil, err
	}
	if err := cmd("cc", "-DBFS", "-DSAFETY", "-O2", "-w", fmt.Sprintf("-DMEMLIM=%d", o.MemoryMB), "-DVECTORSZ=4096", "-o", "pan", "pan.c"); err != nil {
		return nil, err
	}
	if err := cmd("./pan", "-n", fmt.Sprintf("-m%d", o.Depth)); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, reach+".trail")); err != nil {
		return nil, errors.New("not reachable without the invariant's environment")
	}
	c := exec.CommandContext(ctx, "spin", "-t", reach)
	c.Dir = dir
	out, err := c.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("spin -t: %v\n%s", err, lastLines(string(out), 20))
	}
	r := readRun(src, string(out))
	r.Violation = ""
	return r, nil
}

var (
	errorsRE = regexp.MustCompile(`errors: (\d+)`)
	depthRE  = regexp.MustCompile(`depth reached (\d+)`)
	statesRE = regexp.MustCompile(`(\d+) states, stored`)
	memRE    = regexp.MustCompile(`([0-9.]+)\s+total actual memory usage`)
)

// read takes pan's report.
func (r *Result) read(out string) error {
	e := errorsRE.FindStringSubmatch(out)
	if e == nil {
		return errors.New("pan printed no verdict")
	}
	if strings.Contains(out, "max search depth too small") {
		return fmt.Errorf("the search depth was too small: raise -depth")
	}
	if strings.Contains(out, "pan: out of memory") || strings.Contains(out, "pan: reached -DMEMLIM") {
		return fmt.Errorf("out of memory: raise -memory")
	}
	r.Holds = e[1] == "0"
	if d := depthRE.FindStringSubmatch(out); d != nil {
		r.Depth, _ = strconv.ParseInt(d[1], 10, 64)
	}
	if s := statesRE.FindStringSubmatch(out); s != nil {
		r.States, _ = strconv.ParseInt(s[1], 10, 64)
	}
	if m := memRE.FindStringSubmatch(out); m != nil {
		r.MemoryMB, _ = strconv.ParseFloat(m[1], 64)
	}
	return nil
}

var defineRE = regexp.MustCompile(`(?m)^#define ([SE])_\w+ (\d+)(?: /\* (\S+) \*/)?$`)

// readRun reads what the Promela program src printed as it ran (spin's
// simulation, or its replay of a counterexample): the params it chose,
// each event with the params the runtime set before and after it and the
// variables after it, the moments the assumptions and the cycle begin,
// and the violated property.
func readRun(src []byte, out string) *Run {
	names := map[string]map[string]string{"S": {}, "E": {}}
	for _, d := range defineRE.FindAllStringSubmatch(string(src), -1) {
		names[d[1]][d[2]] = d[3]
	}
	r := &Run{Params: map[string]int64{}, Assume: -1, Cycle: -1}
	cur := SimStep{Before: map[string]int64{}, After: map[string]int64{}}
	after, started := false, false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case f[0] == "PARAM" && len(f) == 3:
			v, _ := strconv.ParseInt(f[2], 10, 64)
			switch {
			case !started:
				r.Params[f[1]] = v
			case after:
				cur.After[f[1]] = v
			default:
				cur.Before[f[1]] = v
			}
		case f[0] == "START":
			started = true
		case f[0] == "AFTER":
			after = true
		case f[0] == "STEP" && len(f) == 4:
			cur.From, cur.Event, cur.To = names["S"][f[1]], names["E"][f[2]], names["S"][f[3]]
		case f[0] == "VARS":
			cur.Vars = map[string]int64{}
			for _, kv := range f[1:] {
				k, v, _ := strings.Cut(kv, "=")
				cur.Vars[k], _ = strconv.ParseInt(v, 10, 64)
			}
			r.Steps = append(r.Steps, cur)
			cur, after = SimStep{Before: map[string]int64{}, After: map[string]int64{}}, false
		case f[0] == "ASSUME":
			r.Assume = len(r.Steps)
		case strings.Contains(line, "START OF CYCLE"):
			r.Cycle = len(r.Steps)
		case f[0] == "VIOLATION":
			r.Violation = strings.TrimPrefix(line, "VIOLATION ")
		}
	}
	return r
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// SimStep is one event of a random simulation: the params the runtime set
// before it and after it, the event, the states, and the variables after.
type SimStep struct {
	Before, After map[string]int64
	From, Event   string
	To            string
	Vars          map[string]int64
}

// Simulate runs SPIN's random simulation of the Promela file path (its
// safety environment) with seed, for at most steps statements, and returns
// the initial params and the events it delivered.
func Simulate(ctx context.Context, path string, seed, steps int) (params map[string]int64, sim []SimStep, err error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "sipfailover-simulate-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(path)), src, 0o644); err != nil {
		return nil, nil, err
	}
	cmd := exec.CommandContext(ctx, "spin", fmt.Sprintf("-n%d", seed), fmt.Sprintf("-u%d", steps), filepath.Base(path))
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, nil, fmt.Errorf("spin simulation: %v\n%s", err, lastLines(string(out), 20))
	}
	r := readRun(src, string(out))
	return r.Params, r.Steps, nil
}
