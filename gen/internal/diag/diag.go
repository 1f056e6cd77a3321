// Package diag collects the generator's diagnostics and prints them the way a
// compiler does: path:line:col: message, sorted by position.
package diag

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/sipfailover/sipfailover/internal/suggest"
)

// Severity says whether a diagnostic stops generation.
type Severity int

const (
	// Error stops generation: nothing is written.
	Error Severity = iota
	// Warning is printed but does not stop generation (a missing doc, say).
	Warning
)

// Pos is a position in a model file; Line and Col count from 1.
type Pos struct {
	Path string
	Line int
	Col  int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d:%d", p.Path, p.Line, p.Col) }

// Shift returns p moved n columns to the right, for positions inside a scalar.
func (p Pos) Shift(n int) Pos { p.Col += n; return p }

// Diagnostic is one problem found in a model.
type Diagnostic struct {
	Pos      Pos
	Severity Severity
	Msg      string
}

func (d Diagnostic) String() string {
	if d.Severity == Warning {
		return fmt.Sprintf("%s: warning: %s", d.Pos, d.Msg)
	}
	return fmt.Sprintf("%s: %s", d.Pos, d.Msg)
}

// List accumulates diagnostics. The zero value is ready to use.
type List struct {
	items []Diagnostic
}

// Errorf records an error at pos.
func (l *List) Errorf(pos Pos, format string, args ...any) {
	l.items = append(l.items, Diagnostic{Pos: pos, Severity: Error, Msg: fmt.Sprintf(format, args...)})
}

// Warnf records a warning at pos.
func (l *List) Warnf(pos Pos, format string, args ...any) {
	l.items = append(l.items, Diagnostic{Pos: pos, Severity: Warning, Msg: fmt.Sprintf(format, args...)})
}

// Append adds every diagnostic of other.
func (l *List) Append(other List) { l.items = append(l.items, other.items...) }

// HasErrors reports whether any diagnostic is an error.
func (l *List) HasErrors() bool {
	return slices.ContainsFunc(l.items, func(d Diagnostic) bool { return d.Severity == Error })
}

// Sorted returns the diagnostics in position order, duplicates removed.
func (l *List) Sorted() []Diagnostic {
	out := slices.Clone(l.items)
	slices.SortStableFunc(out, func(a, b Diagnostic) int {
		return cmp.Or(
			cmp.Compare(a.Pos.Path, b.Pos.Path),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col),
			cmp.Compare(a.Severity, b.Severity),
			cmp.Compare(a.Msg, b.Msg),
		)
	})
	return slices.Compact(out)
}

// String prints every diagnostic, one a line, in position order.
func (l *List) String() string {
	var b strings.Builder
	for _, d := range l.Sorted() {
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Suggest returns ` (did you mean "x"?)` when one of candidates is close to
// name, and "" otherwise.
func Suggest(name string, candidates []string) string { return suggest.Hint(name, candidates) }
