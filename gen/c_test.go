package gen

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// strictC are the flags the C machines must compile under without a
// warning.
var strictC = []string{"-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Werror"}

// TestCCompiles: the C of every model of model/, and of a test model with
// guards, compiles with no warning under gcc and clang with strictC, and
// each header compiles on its own. A compiler missing here is skipped;
// .ci/run installs both.
func TestCCompiles(t *testing.T) {
	models, _ := filepath.Glob("../model/*.yaml")
	models = append(models, "testdata/base.yaml")
	dir := t.TempDir()
	var sources []string
	for _, path := range models {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		common, header, source, err := CCode(path, src)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		// The files are named for the machine, which the source includes.
		_, rest, _ := strings.Cut(string(source), `#include "`)
		name, _, _ := strings.Cut(rest, `.h"`)
		if !strings.Contains(string(header), "_MODEL_SHA256") {
			t.Errorf("%s: the header does not carry the model's SHA-256", path)
		}
		for file, data := range map[string][]byte{"sipfailover_fsm.h": common, name + ".h": header, name + ".c": source,
			name + "_alone.c": []byte("#include \"" + name + ".h\"\n")} {
			if err := os.WriteFile(filepath.Join(dir, file), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		sources = append(sources, name+".c", name+"_alone.c")
	}
	ran := 0
	for _, cc := range []string{"gcc", "clang"} {
		if _, err := exec.LookPath(cc); err != nil {
			t.Logf("%s is not installed: not compiled with it", cc)
			continue
		}
		ran++
		for _, src := range sources {
			cmd := exec.Command(cc, append(strictC, "-c", "-o", os.DevNull, src)...)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s %s: %v\n%s", cc, src, err, out)
			}
		}
	}
	if ran == 0 {
		t.Skip("no C compiler here")
	}
}

// TestCNamesMeet: a derived value named as a function every C machine has
// is refused at its place, as a name that would meet a Go method is.
func TestCNamesMeet(t *testing.T) {
	src, err := os.ReadFile("testdata/base.yaml")
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(src), "vars:", "derived:\n  allowed:\n    expr: hold > 0s\n    doc: Meets door_allowed.\nvars:", 1)
	_, err = GoCode("door.yaml", []byte(changed))
	if err == nil || !strings.Contains(err.Error(), `door.yaml:7:3: derived "allowed" would clash with the generated C function door_allowed`) {
		t.Fatalf("got %v, want derived allowed refused at 7:3 as door_allowed", err)
	}
}
