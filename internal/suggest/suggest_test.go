package suggest

import "testing"

func TestHint(t *testing.T) {
	names := []string{"password", "port", "servers", "user"}
	for in, want := range map[string]string{
		"pasword": ` (did you mean "password"?)`,
		"prot":    ` (did you mean "port"?)`,
		"sever":   ` (did you mean "servers"?)`,
		"zzzzzz":  "",
		"":        "",
	} {
		if got := Hint(in, names); got != want {
			t.Errorf("Hint(%q) = %q, want %q", in, got, want)
		}
	}
}
