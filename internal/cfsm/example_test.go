package cfsm

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite examples/c/failover.txt from the example's output")

// TestFirmwareExample: examples/c/failover.c, a firmware loop around the
// generated line machine, compiles with every warning on under each C
// compiler here and prints the seed's failover and failback exactly as
// examples/c/failover.txt has them (-update rewrites it).
func TestFirmwareExample(t *testing.T) {
	ran := 0
	for _, cc := range []string{"gcc", "clang"} {
		if _, err := exec.LookPath(cc); err != nil {
			continue
		}
		ran++
		bin := filepath.Join(t.TempDir(), "failover")
		build := exec.Command(cc, "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Werror", "-Os",
			"-I", "../../fsm/c", "-o", bin, "../../examples/c/failover.c", "../../fsm/c/line.c")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", cc, err, out)
		}
		out, err := exec.Command(bin).Output()
		if err != nil {
			t.Fatalf("%s: the example failed (%v):\n%s", cc, err, out)
		}
		out = trimLines(out)
		if *update {
			if err := os.WriteFile("../../examples/c/failover.txt", out, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile("../../examples/c/failover.txt")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, want) {
			t.Errorf("%s: the example printed\n%s\nwant examples/c/failover.txt:\n%s", cc, out, want)
		}
	}
	if ran == 0 {
		t.Skip("no C compiler here")
	}
}

// trimLines drops the spaces at the ends of lines that printf's padding
// leaves.
func trimLines(b []byte) []byte {
	lines := bytes.Split(b, []byte("\n"))
	for i, l := range lines {
		lines[i] = bytes.TrimRight(l, " ")
	}
	return bytes.Join(lines, []byte("\n"))
}
