package runtime_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestHeadersAreReadAtTheEdge: the drivers (this package) read no header
// by name; runtime/wire parses every header the program acts on, once,
// where a message enters (an Answer), and builds the messages that repeat
// a request's headers. A GetHeader here is a header parsed a second time.
func TestHeadersAreReadAtTheEdge(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	read := regexp.MustCompile(`\.GetHeaders?\(|sip\.ParseMessage\(`)
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
