package diag

import "testing"

func TestSuggest(t *testing.T) {
	names := []string{"primary_registered", "backup_registered", "probing", "retrying"}
	tests := map[string]string{
		"primary_registerd": ` (did you mean "primary_registered"?)`,
		"probng":            ` (did you mean "probing"?)`,
		"retying":           ` (did you mean "retrying"?)`,
		"zebra":             "",
	}
	for in, want := range tests {
		if got := Suggest(in, names); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSortedByPosition(t *testing.T) {
	var l List
	l.Errorf(Pos{"b.yaml", 1, 1}, "third")
	l.Warnf(Pos{"a.yaml", 9, 2}, "second")
	l.Errorf(Pos{"a.yaml", 2, 7}, "first")
	l.Errorf(Pos{"a.yaml", 2, 7}, "first")
	want := "a.yaml:2:7: first\na.yaml:9:2: warning: second\nb.yaml:1:1: third\n"
	if got := l.String(); got != want {
		t.Fatalf("got\n%swant\n%s", got, want)
	}
	if !l.HasErrors() {
		t.Fatal("HasErrors is false")
	}
}
