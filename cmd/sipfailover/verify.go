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
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sipfailover/sipfailover/internal/verify"
)

// verifyCmd is `sipfailover verify`: every model's generated Promela
// (verify/*.pml) through SPIN, each property with its states, depth,
// memory, time and verdict, and a violation as the model steps that make it.
func verifyCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	dir := fs.String("dir", "verify", "the folder of the generated Promela (sipfailover gen writes it)")
	only := fs.String("model", "", "check this model only (line, request ...)")
	prop := fs.String("property", "", "check this property only (safety, or a leads-to invariant's id)")
	asJSON := fs.Bool("json", false, "print the results as JSON")
	scenarios := fs.String("scenarios", "", "write each counterexample of the line model as a scenario script for the runtime to this folder")
	var o verify.Options
	fs.IntVar(&o.Depth, "depth", 2000000, "pan's search depth bound")
	fs.IntVar(&o.MemoryMB, "memory", 4096, "pan's memory bound, MiB")
	fs.DurationVar(&o.Timeout, "timeout", 10*time.Minute, "the time bound of each property")
	if code, ok := parse(fs, args, "verify [-model M] [-property P] [-json] [-scenarios DIR]", 0, 0, stdout, stderr); !ok {
		return code
	}
	if err := verify.Tools(); err != nil {
		fmt.Fprintln(stderr, "verify:", err)
		return 1
	}
	paths, _ := filepath.Glob(filepath.Join(*dir, "*.pml"))
	slices.Sort(paths)
	if len(paths) == 0 {
		fmt.Fprintf(stderr, "verify: no models in %s: run sipfailover gen first\n", *dir)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var results []verify.Result
	failed, matched := false, false
	for _, path := range paths {
		props, err := verify.Properties(path)
		if err != nil {
			fmt.Fprintln(stderr, "verify:", err)
			return 1
		}
		for _, p := range props {
			if *only != "" && p.Model != *only || *prop != "" && p.ID != *prop {
				continue
			}
			matched = true
			r, err := verify.Check(ctx, path, p, o)
			if err != nil {
				fmt.Fprintln(stderr, "verify:", err)
				return 1
			}
			results = append(results, r)
			failed = failed || !r.Holds
			if !*asJSON {
				printResult(stdout, r)
			}
			if !r.Holds && *scenarios != "" {
				writeScenario(stdout, stderr, *scenarios, r)
			}
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
