package runtime_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestHeadersAreReadAtTheEdge: the drivers (this package) read and write
// no header by name; runtime/wire parses every header the program acts on,
// once, where a message enters (an Answer), and writes every message the
// program sends (wire.Request, the answers and the ACK and CANCEL). A
// GetHeader, or a parameter read off a header, here is a header parsed a
// second time; a NewHeader is a header name spelt outside the edge.
func TestHeadersAreReadAtTheEdge(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	read := regexp.MustCompile(`\.GetHeaders?\(|sip\.ParseMessage\(|\.Params\.Get\(|sip\.NewResponseFromRequest\(|sip\.NewHeader\(|\.AppendHeader\(`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(src), "\n") {
			if read.MatchString(line) {
				t.Errorf("%s:%d: %s (a header read past the edge: parse it in runtime/wire)", f, i+1, strings.TrimSpace(line))
			}
		}
	}
}

// TestFilesStaySmall: no source file of the runtime's packages passes 700
// lines, so that each stays one concern a newcomer reads in a sitting.
func TestFilesStaySmall(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if n := strings.Count(string(src), "\n"); n > 700 {
			t.Errorf("runtime/%s: %d lines, more than 700: split it by concern", path, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
