//go:build cgo

package cfsm

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// negated turns a comparison into its opposite.
var negated = map[string]string{"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}

// condition finds the first branch condition in a C machine's fire
// function, and comparison the first comparison in it.
var (
	condition  = regexp.MustCompile(`\t\t\tif \((.*)\) \{\n`)
	comparison = regexp.MustCompile(` (<=|>=|==|!=|<|>) `)
)

// mutate changes one token of a C machine: the first comparison of its first
// branch condition to its opposite, or, in a condition with none, a ! before
// it.
func mutate(src []byte) ([]byte, string, bool) {
	fire := bytes.Index(src, []byte("_fire("))
	if fire < 0 {
		return nil, "", false
	}
	c := condition.FindSubmatchIndex(src[fire:])
	if c == nil {
		return nil, "", false
	}
	start, end := fire+c[2], fire+c[3]
	cond := src[start:end]
	if op := comparison.FindSubmatchIndex(cond); op != nil {
		was := string(cond[op[2]:op[3]])
		return bytes.Join([][]byte{src[:start+op[2]], []byte(negated[was]), src[start+op[3]:]}, nil), fmt.Sprintf("%s: %s for %s", cond, negated[was], was), true
	}
	return bytes.Join([][]byte{src[:start], []byte("!"), src[start:]}, nil), fmt.Sprintf("%s: negated", cond), true
}

// TestMutantsFail: the differential test is able to fail. In a copy of the
// module, each C machine gets one token changed (the first comparison of a
// branch condition in its fire function, negated) and the test must find
// every one of the five different from its Go machine.
func TestMutantsFail(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a copy of the module")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, rel := range []string{"go.mod", "go.sum", "fsm", "internal/cfsm"} {
		copyTree(t, filepath.Join(root, rel), filepath.Join(dir, rel))
	}
	sources, _ := filepath.Glob(filepath.Join(dir, "fsm", "c", "*.c"))
	if len(sources) != len(pairs) {
		t.Fatalf("%d C machines, %d bridged", len(sources), len(pairs))
	}
	for _, path := range sources {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		mutant, what, ok := mutate(src)
		if !ok {
			t.Fatalf("%s: no branch condition to mutate", path)
		}
		if err := os.WriteFile(path, mutant, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s", filepath.Base(path), what)
	}
	cmd := exec.Command("go", "test", "-count=1", "-run", "^TestCEqualsGo$", "./internal/cfsm", "-rapid.checks=300")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the differential test passed five mutants:\n%s", out)
	}
	for _, mk := range pairs {
		if !strings.Contains(string(out), "--- FAIL: TestCEqualsGo/"+mk.name+" ") {
			t.Errorf("the %s mutant was not caught:\n%s", mk.name, out)
		}
	}
}

// copyTree copies the regular files under src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
