package gen

import (
	"bytes"
	"encoding/json"
	"flag"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"github.com/sipfailover/sipfailover/gen/internal/diag"
	"github.com/sipfailover/sipfailover/gen/internal/emit"
	"github.com/sipfailover/sipfailover/gen/internal/model"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// compile parses and checks one model source as the generator does.
func compile(path string, src []byte) (*model.Model, *diag.List) {
	var l diag.List
	m := model.Parse(path, src, &l)
	if !l.HasErrors() {
		model.Check(m, &l)
	}
	return m, &l
}

// golden compares got with the section name of archive a, or rewrites it.
func golden(t *testing.T, file string, a *txtar.Archive, name string, got []byte) {
	t.Helper()
	for i, f := range a.Files {
		if f.Name != name {
			continue
		}
		if *update {
			a.Files[i].Data = got
			return
		}
		if !bytes.Equal(f.Data, got) {
			t.Errorf("%s: %s differs from golden (go test ./gen -update rewrites it):\n%s", file, name, Diff(name, f.Data, got))
		}
		return
	}
	if *update {
		a.Files = append(a.Files, txtar.File{Name: name, Data: got})
		return
	}
	t.Errorf("%s: no section %q (go test ./gen -update adds it)", file, name)
}

func readArchive(t *testing.T, path string) *txtar.Archive {
	t.Helper()
	a, err := txtar.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func writeArchive(t *testing.T, path string, a *txtar.Archive) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, txtar.Format(a), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func section(a *txtar.Archive, name string) []byte {
	for _, f := range a.Files {
		if f.Name == name {
			return f.Data
		}
	}
	return nil
}

// TestInvalidModels runs every model under testdata/invalid and compares the
// diagnostics with the golden errors section. Each case is the valid
// testdata/base.yaml with one mistake, so each proves one check can fail.
func TestInvalidModels(t *testing.T) {
	files, _ := filepath.Glob("testdata/invalid/*.txtar")
	if len(files) < 25 {
		t.Fatalf("only %d invalid models under testdata/invalid", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			a := readArchive(t, file)
			src := section(a, "model.yaml")
			if src == nil {
				t.Fatal("no model.yaml section")
			}
			_, l := compile("model.yaml", src)
			got := l.String()
			if got == "" {
				t.Fatal("the model passed every check; each invalid model must fail at least one")
			}
			if filepath.Base(file) != "missing_doc.txtar" && !l.HasErrors() {
				t.Errorf("only warnings, want an error:\n%s", got)
			}
			golden(t, file, a, "errors", []byte(got))
			writeArchive(t, file, a)
		})
	}
}

// TestBaseModelIsValid keeps the invalid cases honest: without their one
// mistake, the model passes every check with no warning.
func TestBaseModelIsValid(t *testing.T) {
	src, err := os.ReadFile("testdata/base.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, l := compile("base.yaml", src); l.String() != "" {
		t.Fatalf("base model is not clean:\n%s", l.String())
	}
}

// TestEveryValidationHasACase names the validations the generator promises
// and the invalid model that proves each.
func TestEveryValidationHasACase(t *testing.T) {
	promised := map[string]string{
		"yaml_syntax":             "yaml:",
		"unknown_field":           "did you mean",
		"unknown_state":           "unknown state",
		"unknown_event":           "unknown event",
		"unknown_action":          "unknown action",
		"unknown_timer":           "unknown timer",
		"unknown_name":            "unknown name",
		"no_initial":              "no initial state",
		"two_initial":             "second initial state",
		"unreachable":             "unreachable",
		"no_way_out":              "no way out",
		"final_outgoing":          "leaves final state",
		"dead_branch":             "can never fire",
		"incomplete":              "neither handles nor ignores",
		"timer_never_armed":       "never armed",
		"bad_name":                "must match",
		"go_name_clash":           "both become the Go name",
		"go_keyword":              "Go keyword",
		"looplab_reserved":        "reserved for looplab",
		"duplicate_transition_id": "already declared",
		"expr_syntax":             "expected",
		"expr_type":               "needs two ints or two durations",
		"missing_doc":             "warning: ",
		"handled_twice":           "already handles",
		"ignored_and_handled":     "both ignores and handles",
		"var_bounds":              "outside",
		"derived_cycle":           "depends on itself",
		"set_param":               "unknown var",
		"bad_requirement":         "not a requirement",
		"no_fallback":             "fallback",
		"timer_duration_type":     "want duration",
	}
	for name, want := range promised {
		a := readArchive(t, filepath.Join("testdata/invalid", name+".txtar"))
		if got := string(section(a, "errors")); !strings.Contains(got, want) {
			t.Errorf("%s: golden errors lack %q:\n%s", name, want, got)
		}
	}
}

// TestValidModels compares every output of the small models under
// testdata/valid with their golden sections.
func TestValidModels(t *testing.T) {
	files, _ := filepath.Glob("testdata/valid/*.txtar")
	if len(files) == 0 {
		t.Fatal("no valid models under testdata/valid")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			a := readArchive(t, file)
			m, l := compile("model/door.yaml", section(a, "model.yaml"))
			if l.String() != "" {
				t.Fatalf("model has problems:\n%s", l.String())
			}
			code, test, err := emit.Go(m, m.Path)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, file, a, "gen.go", code)
			golden(t, file, a, "gen_test.go", test)
			golden(t, file, a, "diagram.mmd", mermaidByState(m))
			golden(t, file, a, "diagram.dot", emit.Dot(m))
			golden(t, file, a, "doc.md", emit.Markdown(m, "../"+m.Path))
			writeArchive(t, file, a)
		})
	}
}

// mermaidByState is the Mermaid picture of each state of m, one after the
// other, as the docs show them.
func mermaidByState(m *model.Model) []byte {
	var b strings.Builder
	for _, s := range m.States {
		b.WriteString("%% from " + s.Name + "\n" + emit.MermaidFrom(m, s))
	}
	return []byte(b.String())
}

// TestRealModelDiagrams compares the Mermaid and DOT of model/*.yaml with
// testdata/models/<model>.txtar.
func TestRealModelDiagrams(t *testing.T) {
	paths, _ := filepath.Glob("../model/*.yaml")
	if len(paths) < 2 {
		t.Fatalf("found %d models under ../model, want line and request", len(paths))
	}
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".yaml")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			m, l := compile("model/"+name+".yaml", src)
			if l.String() != "" {
				t.Fatalf("%s has problems:\n%s", p, l.String())
			}
			file := filepath.Join("testdata/models", name+".txtar")
			a := &txtar.Archive{Comment: []byte("Diagrams of model/" + name + ".yaml; go test ./gen -update rewrites them.\n")}
			if !*update {
				a = readArchive(t, file)
			}
			golden(t, file, a, name+".mmd", mermaidByState(m))
			golden(t, file, a, name+".dot", emit.Dot(m))
			writeArchive(t, file, a)
		})
	}
}

// TestTraceability checks that every requirement R3-R13 and invariant I1-I9
// of docs/requirements.md shows in some model element.
func TestTraceability(t *testing.T) {
	covered := map[string]bool{}
	paths, _ := filepath.Glob("../model/*.yaml")
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m, l := compile(p, src)
		if l.HasErrors() {
			t.Fatalf("%s:\n%s", p, l.String())
		}
		for id := range emit.Trace(m) {
			covered[id] = true
		}
	}
	var want []string
	for i := 3; i <= 13; i++ {
		want = append(want, "R"+strconv.Itoa(i))
	}
	for i := 1; i <= 9; i++ {
		want = append(want, "I"+strconv.Itoa(i))
	}
	for _, id := range want {
		if !covered[id] {
			t.Errorf("%s of docs/requirements.md is not named by any element of model/*.yaml", id)
		}
	}
}

// TestInvariantTestsExist: every test an invariant names is a test function
// of this module, so the docs never point at a test that is not there.
func TestInvariantTestsExist(t *testing.T) {
	tests := map[string]bool{}
	filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range testFunc.FindAllSubmatch(src, -1) {
			tests[string(m[1])] = true
		}
		return nil
	})
	paths, _ := filepath.Glob("../model/*.yaml")
	named := 0
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := compile(p, src)
		for _, inv := range m.Invariants {
			if inv.Test == "" {
				continue
			}
			named++
			if !tests[inv.Test] {
				t.Errorf("%s: invariant %s names test %s, which does not exist", inv.ID.Pos, inv.ID.Name, inv.Test)
			}
		}
	}
	if named == 0 {
		t.Fatal("no invariant names a test")
	}
}

var testFunc = regexp.MustCompile(`(?m)^func (Test\w*)\(t \*testing\.T\)`)

// TestSchemaMatchesParser keeps model/model.schema.json and the parser's
// field table in step: every field the parser accepts is in the schema and
// the other way round.
func TestSchemaMatchesParser(t *testing.T) {
	src, err := os.ReadFile("../model/model.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := schemaFields(src)
	if err != nil {
		t.Fatal(err)
	}
	for kind, fields := range model.Fields {
		want := slices.Sorted(slices.Values(fields))
		if !slices.Equal(got[kind], want) {
			t.Errorf("schema fields of %s = %v, parser accepts %v", kind, got[kind], want)
		}
	}
}

// schemaFields reads, for each kind of mapping, the property names the
// schema allows.
func schemaFields(src []byte) (map[string][]string, error) {
	type object struct {
		Properties map[string]json.RawMessage `json:"properties"`
		OneOf      []object                   `json:"oneOf"`
	}
	var root struct {
		object
		Defs map[string]object `json:"$defs"`
	}
	if err := json.Unmarshal(src, &root); err != nil {
		return nil, err
	}
	keys := func(o object) []string { return slices.Sorted(maps.Keys(o.Properties)) }
	out := map[string][]string{"model": keys(root.object)}
	for kind := range model.Fields {
		if def, ok := root.Defs[kind]; ok {
			out[kind] = keys(def)
		}
	}
	for _, kind := range []string{"guard", "event", "action"} {
		for _, alt := range root.Defs["documented"].OneOf {
			if alt.Properties != nil {
				out[kind] = keys(alt)
			}
		}
	}
	return out, nil
}
