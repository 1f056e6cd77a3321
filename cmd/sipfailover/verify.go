package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sipfailover/sipfailover/gen"
	"github.com/sipfailover/sipfailover/internal/verify"
)

// verifyCmd is `sipfailover verify`: every model of model/ as it is on disk,
// compiled to Promela here and now and run through SPIN, each property with
// its states, depth, memory, time and verdict, and a violation as the model
// steps that make it. It never reads the committed verify/*.pml: a model
// edited without regenerating is checked as edited, and a model that does
// not compile is refused (exit 2) with the generator's diagnostics.
func verifyCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	models := fs.String("models", "model", "the folder of the models (*.yaml) to check")
	only := fs.String("model", "", "check this model only (line, request ...)")
	prop := fs.String("property", "", "check this property only (safety, or a leads-to invariant's id)")
	asJSON := fs.Bool("json", false, "print the results as JSON")
	scenarios := fs.String("scenarios", "", "write each counterexample of the line model as a scenario script for the runtime to this folder")
	var o verify.Options
	fs.IntVar(&o.Depth, "depth", 2000000, "pan's search depth bound")
	fs.IntVar(&o.MemoryMB, "memory", 4096, "pan's memory bound, MiB")
	fs.DurationVar(&o.Timeout, "timeout", 10*time.Minute, "the time bound of each property")
	parallel := fs.Int("jobs", min(runtime.NumCPU(), 4), "how many properties to check at once (each its own pan run)")
	if code, ok := parse(fs, args, "verify [-model M] [-property P] [-json] [-scenarios DIR] [-jobs N]", 0, 0, stdout, stderr); !ok {
		return code
	}
	if *parallel < 1 || *parallel > 64 {
		fmt.Fprintf(stderr, "verify: -jobs %d: 1 to 64\n", *parallel)
		return 2
	}
	if err := verify.Tools(); err != nil {
		fmt.Fprintln(stderr, "verify:", err)
		return 2
	}
	dir, err := os.MkdirTemp("", "sipfailover-pml-")
	if err != nil {
		fmt.Fprintln(stderr, "verify:", err)
		return 2
	}
	defer os.RemoveAll(dir)
	paths, err := compileModels(*models, dir)
	if err != nil {
		fmt.Fprintln(stderr, "verify:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Each property is its own pan run in a folder of its own: they run
	// side by side, -jobs at a time, and are reported in order.
	type job struct {
		path string
		p    verify.Property
	}
	var jobs []job
	for _, path := range paths {
		props, err := verify.Properties(path)
		if err != nil {
			fmt.Fprintln(stderr, "verify:", err)
			return 2
		}
		for _, p := range props {
			if *only != "" && p.Model != *only || *prop != "" && p.ID != *prop {
				continue
			}
			jobs = append(jobs, job{path, p})
		}
	}
	matched := len(jobs) > 0
	type outcome struct {
		r   verify.Result
		err error
	}
	done := make([]chan outcome, len(jobs))
	slots := make(chan struct{}, *parallel)
	for i, j := range jobs {
		done[i] = make(chan outcome, 1)
		go func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			r, err := verify.Check(ctx, j.path, j.p, o)
			done[i] <- outcome{r, err}
		}()
	}
	var results []verify.Result
	failed := false
	for i := range jobs {
		out := <-done[i]
		if out.err != nil {
			fmt.Fprintln(stderr, "verify:", out.err)
			cancel() // the runs still going stop
			for _, d := range done[i+1:] {
				<-d
			}
			return 1
		}
		r := out.r
		results = append(results, r)
		failed = failed || !r.Holds
		if !*asJSON {
			printResult(stdout, r)
		}
		if !r.Holds && *scenarios != "" {
			writeScenario(stdout, stderr, *scenarios, r)
		}
	}
	if !matched {
		fmt.Fprintf(stderr, "verify: no property matches -model %q -property %q\n", *only, *prop)
		return 2
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(results)
	}
	if failed {
		return 1
	}
	return 0
}

// compileModels compiles every model in dir (*.yaml) to Promela in out, as
// out/<file>.pml (the name verify/ has it under), and returns those files in order. A model that does
// not parse or check is an error that names its file, line and column.
func compileModels(dir, out string) ([]string, error) {
	srcs, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(srcs) == 0 {
		return nil, fmt.Errorf("no models: %s has no *.yaml", dir)
	}
	slices.Sort(srcs)
	var paths []string
	for _, src := range srcs {
		text, err := os.ReadFile(src)
		if err != nil {
			return nil, err
		}
		pml, err := gen.Promela(filepath.ToSlash(src), text)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(out, strings.TrimSuffix(filepath.Base(src), ".yaml")+".pml")
		if err := os.WriteFile(path, pml, 0o644); err != nil {
			return nil, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// printResult writes one property's line, and its counterexample.
func printResult(w io.Writer, r verify.Result) {
	verdict, kind := "holds", "assertions"
	if !r.Holds {
		verdict = "VIOLATED"
	}
	if r.LTL {
		kind = "LTL, weak fairness"
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\t%s\t%d states\tdepth %d\t%.0f MiB\t%v\t%s\n", r.Property, kind, r.States, r.Depth, r.MemoryMB, r.Time.Round(time.Millisecond), verdict)
	tw.Flush()
	if len(r.Trail) > 0 {
		fmt.Fprintf(w, "  counterexample:\n    %s\n", strings.Join(r.Trail, "\n    "))
	}
}

// writeScenario writes the counterexample r as a scenario script in dir,
// and says how to replay it, or why it cannot be replayed.
func writeScenario(stdout, stderr io.Writer, dir string, r verify.Result) {
	script, err := verify.Scenario(r)
	if err != nil {
		fmt.Fprintf(stderr, "verify: %s: no scenario: %v\n", r.Property, err)
		return
	}
	file := filepath.Join(dir, r.Model+"_"+r.ID+".txt")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(stderr, "verify:", err)
		return
	}
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		fmt.Fprintln(stderr, "verify:", err)
		return
	}
	abs, _ := filepath.Abs(file)
	fmt.Fprintf(stdout, "  replay on the runtime: go test ./runtime -run TestScenarioFile -args -scenario %s\n", abs)
}
