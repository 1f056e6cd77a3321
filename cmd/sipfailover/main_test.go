package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckReportsPositionsAndExitCode(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	src := "machine: m\ndoc: d\nstates:\n  a:\n    initial: true\n    doc: x\n    ignore: [nope]\n"
	if err := os.WriteFile(bad, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"check", bad}, &out, &errOut); code != 1 {
		t.Fatalf("check of a bad model exited %d, want 1; stderr:\n%s", code, errOut.String())
	}
	if want := bad + ":7:14: unknown event \"nope\""; !strings.Contains(errOut.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, errOut.String())
	}
}

func TestCheckRealModels(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"check", "../../model/line.yaml", "../../model/request.yaml"}, &out, &errOut); code != 0 {
		t.Fatalf("check of the real models exited %d:\n%s", code, errOut.String())
	}
	if errOut.Len() != 0 {
		t.Errorf("the real models have warnings:\n%s", errOut.String())
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"frobnicate"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "unknown command") {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
}
