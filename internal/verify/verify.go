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
	trail, err := run("spin", append(defs, "-t", pml)...)
	if err != nil {
		return res, err
	}
	res.Trail = readTrail(src, trail)
	return res, nil
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

// readTrail turns spin's replay of a counterexample into model steps:
// the params, then "from --event--> to" for each event, the start of the
// cycle that never reaches the goal, and the violated property.
func readTrail(src []byte, replay string) []string {
	names := map[string]map[string]string{"S": {}, "E": {}}
	for _, d := range defineRE.FindAllStringSubmatch(string(src), -1) {
		names[d[1]][d[2]] = d[3]
	}
	name := func(kind, num string) string { return names[kind][num] }
	var out []string
	var params []string // changed since the last step
	last := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(replay))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "PARAM "):
			f := strings.Fields(line)
			if len(f) == 3 && last[f[1]] != f[2] {
				last[f[1]] = f[2]
				params = append(params, f[1]+"="+f[2])
			}
		case strings.HasPrefix(line, "STEP "):
			if len(params) > 0 {
				out = append(out, "params "+strings.Join(params, " "))
				params = nil
			}
			f := strings.Fields(line)
			if len(f) == 4 {
				out = append(out, fmt.Sprintf("%s --%s--> %s", name("S", f[1]), name("E", f[2]), name("S", f[3])))
			}
		case strings.HasPrefix(line, "ASSUME "):
			out = append(out, "(from here on the environment behaves as the invariant assumes)")
		case strings.Contains(line, "START OF CYCLE"):
			out = append(out, "(from here the run repeats forever)")
		case strings.HasPrefix(line, "VIOLATION "):
			out = append(out, strings.TrimPrefix(line, "VIOLATION "))
		}
	}
	if len(params) > 0 {
		out = append(out, "params "+strings.Join(params, " "))
	}
	return slices.Clip(out)
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
	names := map[string]map[string]string{"S": {}, "E": {}}
	for _, d := range defineRE.FindAllStringSubmatch(string(src), -1) {
		names[d[1]][d[2]] = d[3]
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
	params = map[string]int64{}
	cur := SimStep{Before: map[string]int64{}, After: map[string]int64{}}
	after, started := false, false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "PARAM":
			if len(f) != 3 {
				continue
			}
			v, _ := strconv.ParseInt(f[2], 10, 64)
			switch {
			case !started:
				params[f[1]] = v
			case after:
				cur.After[f[1]] = v
			default:
				cur.Before[f[1]] = v
			}
		case "START":
			started = true
		case "AFTER":
			after = true
		case "STEP":
			if len(f) == 4 {
				cur.From, cur.Event, cur.To = names["S"][f[1]], names["E"][f[2]], names["S"][f[3]]
			}
		case "VARS":
			cur.Vars = map[string]int64{}
			for _, kv := range f[1:] {
				k, v, _ := strings.Cut(kv, "=")
				cur.Vars[k], _ = strconv.ParseInt(v, 10, 64)
			}
			sim = append(sim, cur)
			cur, after = SimStep{Before: map[string]int64{}, After: map[string]int64{}}, false
		}
	}
	return params, sim, nil
}
