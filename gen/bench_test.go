package gen

import "testing"

// BenchmarkGenerate measures a full generation of the real models: parse,
// check, and emit Go, Markdown, Mermaid and DOT (no Graphviz rendering).
func BenchmarkGenerate(b *testing.B) {
	o := Options{Root: "..", Dot: "-"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Generate(o); err != nil {
			b.Fatal(err)
		}
	}
}
