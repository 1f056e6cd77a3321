package gen

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sipfailover/sipfailover/gen/internal/diag"
	"github.com/sipfailover/sipfailover/gen/internal/emit"
	"github.com/sipfailover/sipfailover/gen/internal/model"
)

// Options say where the models are and where output goes. Paths are
// relative to Root.
type Options struct {
	Root   string // the module root; default "."
	Models string // folder of *.yaml models; default "model"
	FSM    string // generated Go; default "fsm"
	Docs   string // generated diagrams and docs; default "docs"
	Verify string // generated Promela for the model checker; default "verify"
	CTest  string // the cgo bridge that holds the C machines equal to the Go ones; default "internal/cfsm"
	// Dot is the Graphviz dot program used to render SVG; "" looks it up on
	// PATH, "-" never renders.
	Dot string
}

func (o Options) withDefaults() Options {
	o.Root = cmpOr(o.Root, ".")
	o.Models = cmpOr(o.Models, "model")
	o.FSM = cmpOr(o.FSM, "fsm")
	o.Docs = cmpOr(o.Docs, "docs")
	o.Verify = cmpOr(o.Verify, "verify")
	o.CTest = cmpOr(o.CTest, filepath.Join("internal", "cfsm"))
	return o
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// File is one generated file, its path relative to the root.
type File struct {
	Path string
	Data []byte
}

// Diagnostics is the error Generate and Check return when a model is
// invalid: every problem, sorted, one a line as path:line:col: message.
type Diagnostics struct {
	Text string
}

func (d *Diagnostics) Error() string { return strings.TrimRight(d.Text, "\n") }

// Result is what Generate produced.
type Result struct {
	Files    []File
	Warnings string // warnings, one a line, as path:line:col: warning: message
	NoSVG    bool   // dot was not available, so no SVG was rendered
}

// Check parses and validates the models at paths (relative to the current
// directory). It returns the warnings, and a *Diagnostics error when any
// model is invalid.
func Check(paths ...string) (warnings string, err error) {
	var all diag.List
	for _, p := range paths {
		load(p, filepath.ToSlash(p), &all)
	}
	return split(&all)
}

func load(path, rel string, errs *diag.List) *model.Model {
	src, err := os.ReadFile(path)
	if err != nil {
		errs.Errorf(diag.Pos{Path: rel, Line: 1, Col: 1}, "%v", errors.Unwrap(err))
		return nil
	}
	var l diag.List
	m := model.Parse(rel, src, &l)
	if !l.HasErrors() {
		model.Check(m, &l)
	}
	errs.Append(l)
	if l.HasErrors() {
		return nil
	}
	return m
}

// Promela parses and checks the model src (named path in messages) and
// returns it as the Promela program the model checker runs, as `gen` would
// write it to verify/. Tests use it to check changed models.
func Promela(path string, src []byte) ([]byte, error) {
	m, err := parseOne(path, src)
	if err != nil {
		return nil, err
	}
	return emit.Promela(m)
}

// GoCode parses and checks the model src (named path in messages) and
// returns the Go machine `gen` would write to fsm/<name>_gen.go. Tests
// build the runtime with a changed model through it.
func GoCode(path string, src []byte) ([]byte, error) {
	m, err := parseOne(path, src)
	if err != nil {
		return nil, err
	}
	code, _, err := emit.Go(m, path)
	return code, err
}

// CCode parses and checks the model src (named path in messages) and
// returns the C machine `gen` would write to fsm/c/<name>.h and .c, and
// the header every C machine includes.
func CCode(path string, src []byte) (common, header, source []byte, err error) {
	m, err := parseOne(path, src)
	if err != nil {
		return nil, nil, nil, err
	}
	header, source, err = emit.C(m, path)
	return emit.CCommon(), header, source, err
}

func parseOne(path string, src []byte) (*model.Model, error) {
	var l diag.List
	m := model.Parse(path, src, &l)
	if !l.HasErrors() {
		model.Check(m, &l)
	}
	if _, err := split(&l); err != nil {
		return nil, err
	}
	return m, nil
}

// split separates warnings from errors.
func split(l *diag.List) (string, error) {
	var warn, bad strings.Builder
	for _, d := range l.Sorted() {
		if d.Severity == diag.Warning {
			fmt.Fprintln(&warn, d)
		} else {
			fmt.Fprintln(&bad, d)
		}
	}
	if bad.Len() > 0 {
		return warn.String(), &Diagnostics{Text: bad.String() + warn.String()}
	}
	return warn.String(), nil
}

// Generate reads every model and returns the files to write. On any model
// error it returns a *Diagnostics and no files.
func Generate(o Options) (*Result, error) {
	o = o.withDefaults()
	paths, err := filepath.Glob(filepath.Join(o.Root, o.Models, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no models: %s has no *.yaml", filepath.Join(o.Root, o.Models))
	}
	slices.Sort(paths)
	var all diag.List
	var models []*model.Model
	for _, p := range paths {
		rel := filepath.ToSlash(filepath.Join(o.Models, filepath.Base(p)))
		if m := load(p, rel, &all); m != nil {
			models = append(models, m)
		}
	}
	warnings, err := split(&all)
	if err != nil {
		return nil, err
	}
	res := &Result{Warnings: warnings}
	seen := map[string]string{}
	for _, m := range models {
		if prev, dup := seen[m.Name.Name]; dup {
			return nil, &Diagnostics{Text: fmt.Sprintf("%s: machine %s is also the name of %s\n", m.Name.Pos, m.Name.Name, prev)}
		}
		seen[m.Name.Name] = m.Path
	}
	common, err := emit.Common()
	if err != nil {
		return nil, err
	}
	res.Files = append(res.Files, File{filepath.Join(o.FSM, "fsm_gen.go"), common},
		File{filepath.Join(o.FSM, "c", emit.CHeaderCommon), emit.CCommon()})
	dot := o.Dot
	if dot == "" {
		dot, _ = exec.LookPath("dot")
	}
	if dot == "-" {
		dot = ""
	}
	res.NoSVG = dot == ""
	for _, m := range models {
		name := m.Name.Name
		code, test, err := emit.Go(m, m.Path)
		if err != nil {
			return nil, err
		}
		pml, err := emit.Promela(m)
		if err != nil {
			return nil, err
		}
		cHeader, cSource, err := emit.C(m, m.Path)
		if err != nil {
			return nil, err
		}
		cdir, err := filepath.Rel(o.CTest, filepath.Join(o.FSM, "c"))
		if err != nil {
			return nil, err
		}
		bridge, err := emit.CBridge(m, m.Path, filepath.ToSlash(cdir), sha256.Sum256(slices.Concat(emit.CCommon(), cHeader, cSource)))
		if err != nil {
			return nil, err
		}
		dotText, overview := emit.Dot(m), emit.OverviewDot(m)
		res.Files = append(res.Files,
			File{filepath.Join(o.FSM, name+"_gen.go"), code},
			File{filepath.Join(o.FSM, name+"_gen_test.go"), test},
			File{filepath.Join(o.FSM, "c", name+".h"), cHeader},
			File{filepath.Join(o.FSM, "c", name+".c"), cSource},
			File{filepath.Join(o.CTest, name+"_gen.go"), bridge},
			File{filepath.Join(o.Docs, name+".md"), emit.Markdown(m, "../"+m.Path)},
			File{filepath.Join(o.Docs, name+".dot"), dotText},
			File{filepath.Join(o.Docs, name+"-overview.dot"), overview},
			File{filepath.Join(o.Verify, name+".pml"), pml},
		)
		if dot != "" {
			for _, d := range []struct {
				file string
				src  []byte
			}{{name + ".svg", dotText}, {name + "-overview.svg", overview}} {
				svg, err := renderSVG(dot, d.src)
				if err != nil {
					return nil, fmt.Errorf("%s: rendering %s: %w", m.Path, d.file, err)
				}
				res.Files = append(res.Files, File{filepath.Join(o.Docs, d.file), svg})
			}
		}
	}
	return res, nil
}

func renderSVG(dot string, src []byte) ([]byte, error) {
	cmd := exec.Command(dot, "-Tsvg")
	cmd.Stdin = bytes.NewReader(src)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: %s", err, strings.TrimSpace(errOut.String()))
	}
	return out.Bytes(), nil
}

// Write writes files under root, each through a temporary file and a rename,
// and removes generated files that no model produces any more.
func Write(o Options, res *Result) error {
	o = o.withDefaults()
	stale, err := extra(o, res)
	if err != nil {
		return err
	}
	for _, f := range res.Files {
		path := filepath.Join(o.Root, f.Path)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		tmp, err := os.CreateTemp(filepath.Dir(path), ".gen-*")
		if err != nil {
			return err
		}
		_, werr := tmp.Write(f.Data)
		cerr := tmp.Close()
		if err := errors.Join(werr, cerr); err != nil {
			os.Remove(tmp.Name())
			return err
		}
		if err := os.Chmod(tmp.Name(), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			os.Remove(tmp.Name())
			return err
		}
	}
	for _, p := range stale {
		if err := os.Remove(filepath.Join(o.Root, p)); err != nil {
			return err
		}
	}
	return nil
}

// generatedMarker starts every generated file but the SVGs (which Graphviz writes).
var generatedMarkers = [][]byte{[]byte("// Code generated by " + emit.Tool), []byte("<!-- Code generated by " + emit.Tool), []byte("/* Code generated by " + emit.Tool)}

// extra lists generated files on disk that res does not contain.
func extra(o Options, res *Result) ([]string, error) {
	want := map[string]bool{}
	models := map[string]bool{}
	for _, f := range res.Files {
		want[filepath.Clean(f.Path)] = true
		if strings.HasSuffix(f.Path, ".dot") {
			models[strings.TrimSuffix(filepath.Base(f.Path), ".dot")] = true
		}
	}
	var out []string
	for _, dir := range []string{o.FSM, filepath.Join(o.FSM, "c"), o.CTest, o.Docs, o.Verify} {
		entries, err := os.ReadDir(filepath.Join(o.Root, dir))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			rel := filepath.Join(dir, e.Name())
			if e.IsDir() || want[rel] {
				continue
			}
			if filepath.Ext(e.Name()) == ".svg" {
				if !models[strings.TrimSuffix(e.Name(), ".svg")] && res.NoSVG == false {
					out = append(out, rel)
				}
				continue
			}
			data, err := os.ReadFile(filepath.Join(o.Root, rel))
			if err != nil {
				return nil, err
			}
			if slices.ContainsFunc(generatedMarkers, func(m []byte) bool { return bytes.HasPrefix(data, m) }) {
				out = append(out, rel)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// Drift compares res with the files on disk and returns a diff of every
// changed, missing or extra file; "" when all agree.
func Drift(o Options, res *Result) (string, error) {
	o = o.withDefaults()
	var b strings.Builder
	for _, f := range res.Files {
		old, err := os.ReadFile(filepath.Join(o.Root, f.Path))
		switch {
		case errors.Is(err, os.ErrNotExist):
			fmt.Fprintf(&b, "missing: %s\n", f.Path)
		case err != nil:
			return "", err
		case !bytes.Equal(old, f.Data):
			b.WriteString(Diff(f.Path, old, f.Data))
		}
	}
	stale, err := extra(o, res)
	if err != nil {
		return "", err
	}
	for _, p := range stale {
		fmt.Fprintf(&b, "extra: %s (no model generates it)\n", p)
	}
	return b.String(), nil
}

// Main runs the gen and check subcommands: args are what follows the
// subcommand's name. It returns the exit code.
func Main(sub string, args []string, stdout, stderr io.Writer) int {
	switch sub {
	case "gen":
		fs := flag.NewFlagSet("gen", flag.ContinueOnError)
		fs.SetOutput(stderr)
		var o Options
		check := fs.Bool("check", false, "write nothing; print a diff and exit 1 if generated files are out of date")
		fs.StringVar(&o.Root, "root", ".", "module root")
		fs.StringVar(&o.Models, "models", "model", "folder of *.yaml models, under root")
		fs.StringVar(&o.FSM, "fsm", "fsm", "folder for generated Go, under root")
		fs.StringVar(&o.Docs, "docs", "docs", "folder for generated diagrams and docs, under root")
		fs.StringVar(&o.Dot, "dot", "", `Graphviz dot program ("" finds it on PATH, "-" renders no SVG)`)
		fs.Usage = func() {
			fmt.Fprint(fs.Output(), "usage: sipfailover gen [-check] [-root DIR] [-models DIR] [-fsm DIR] [-docs DIR] [-dot PROGRAM]\n\n"+
				"Generates fsm/*_gen.go, docs/<model>.{md,dot,svg} and verify/<model>.pml from model/*.yaml.\n\n")
			fs.PrintDefaults()
		}
		fs.SetOutput(io.Discard) // the problem and the usage are printed below, once
		err := fs.Parse(args)
		switch {
		case errors.Is(err, flag.ErrHelp):
			fs.SetOutput(stdout)
			fs.Usage()
			return 0
		case err != nil:
			fmt.Fprintf(stderr, "gen: %v\n", err)
			fs.SetOutput(stderr)
			fs.Usage()
			return 2
		case fs.NArg() > 0:
			fmt.Fprintf(stderr, "gen: unexpected argument %q\n", fs.Arg(0))
			fs.Usage()
			return 2
		}
		res, err := Generate(o)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprint(stderr, res.Warnings)
		if res.NoSVG {
			fmt.Fprintln(stderr, "note: Graphviz dot not found: SVG diagrams not rendered (.ci/install-deps installs it)")
			if *check {
				res.Files = slices.DeleteFunc(res.Files, func(f File) bool { return filepath.Ext(f.Path) == ".svg" })
			}
		}
		if *check {
			d, err := Drift(o, res)
			if err != nil {
				fmt.Fprintln(stderr, err)
				return 1
			}
			if d != "" {
				fmt.Fprint(stdout, d)
				fmt.Fprintln(stderr, "generated files are out of date: run go generate ./...")
				return 1
			}
			return 0
		}
		if err := Write(o, res); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	case "check":
		const usage = "usage: sipfailover check MODEL.yaml...\n\nValidates models and prints every problem as file:line:col.\n"
		switch {
		case len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help"):
			fmt.Fprint(stdout, usage)
			return 0
		case len(args) == 0:
			fmt.Fprint(stderr, usage)
			return 2
		}
		warnings, err := Check(args...)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprint(stderr, warnings)
		fmt.Fprintf(stdout, "%s: ok\n", strings.Join(args, ", "))
		return 0
	}
	fmt.Fprintf(stderr, "unknown subcommand %q\n", sub)
	return 2
}
