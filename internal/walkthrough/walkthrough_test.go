// Package walkthrough tests the README's "Change the behaviour" example:
// it follows the steps literally on a copy of the repository and runs the
// tests there, so the example cannot rot.
package walkthrough

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sipfailover/sipfailover/internal/verify"
)

// snippet is one code block of the example, and the file it names.
type snippet struct {
	lang, path, text string
}

// snippets returns the code blocks of the README's example, each with the
// file the text before it names (the model's blocks name model/line.yaml
// through the section's first step).
func snippets(t *testing.T, readme string) []snippet {
	t.Helper()
	start := strings.Index(readme, "### An example, step by step")
	end := strings.Index(readme, "## Layout")
	if start < 0 || end < start {
		t.Fatal("README: no section \"An example, step by step\" before \"Layout\"")
	}
	section := readme[start:end]
	block := regexp.MustCompile("(?s)\n   ```(yaml|go|sh|)\n(.*?)\n   ```\n")
	path := regexp.MustCompile("`([a-z_/]+\\.(?:go|yaml))`")
	var out []snippet
	prev := 0
	for _, m := range block.FindAllStringSubmatchIndex(section, -1) {
		lang, body := section[m[2]:m[3]], section[m[4]:m[5]]
		var lines []string
		for _, l := range strings.Split(body, "\n") {
			lines = append(lines, strings.TrimPrefix(l, "   "))
		}
		named := path.FindAllStringSubmatch(section[prev:m[0]], -1)
		p := ""
		if len(named) > 0 {
			p = named[len(named)-1][1]
		}
		out = append(out, snippet{lang, p, strings.Join(lines, "\n") + "\n"})
		prev = m[1]
	}
	return out
}

// copyRepo copies the files git tracks in the repository at root, as the
// work tree holds them, to dir: a scratch file or what an earlier test run
// left is no part of the walkthrough.
func copyRepo(t *testing.T, root, dir string) {
	t.Helper()
	out, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v (the walkthrough copies what git tracks)", err)
	}
	for _, rel := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		b, err := os.ReadFile(filepath.Join(root, rel))
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted in the work tree
		}
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// addModelEntries puts each top-level section of the snippet's YAML under
// the section of the same name in the model.
func addModelEntries(t *testing.T, model, snip string) string {
	t.Helper()
	sections := regexp.MustCompile(`(?m)^([a-z_]+):\n`).FindAllStringSubmatchIndex(snip, -1)
	for i, m := range sections {
		name := snip[m[2]:m[3]]
		end := len(snip)
		if i+1 < len(sections) {
			end = sections[i+1][0]
		}
		entries := snip[m[1]:end]
		header := "\n" + name + ":\n"
		at := strings.Index(model, header)
		if at < 0 {
			t.Fatalf("the model has no section %s:", name)
		}
		at += len(header)
		model = model[:at] + entries + model[at:]
	}
	return model
}

// ignore adds event to the ignore list of state in the model.
func ignore(t *testing.T, model, state, event string) string {
	t.Helper()
	at := strings.Index(model, "\n  "+state+":\n")
	if at < 0 {
		t.Fatalf("no state %s", state)
	}
	rest := model[at+1:]
	next := regexp.MustCompile(`\n  [a-z_]+:\n|\n[a-z]`).FindStringIndex(rest[1:])
	body := rest
	if next != nil {
		body = rest[:next[0]+1]
	}
	if i := strings.Index(body, "    ignore: ["); i >= 0 {
		i += len("    ignore: [")
		return model[:at+1+i] + event + ", " + model[at+1+i:]
	}
	line := "  " + state + ":\n"
	return model[:at+1+len(line)] + "    ignore: [" + event + "]\n" + model[at+1+len(line):]
}

func run(t *testing.T, dir string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	// As a newcomer runs them: the deep checks are CI's, run once there on
	// the repository itself.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "SIPFAILOVER_DEEP=") })
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func must(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	out, err := run(t, dir, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// TestReadmeExample follows the README's example on a copy of the
// repository: the model entries, the check and its ignore lists, the
// regeneration, the runtime's and the property suite's files, and the
// tests, which must pass with the new transitions taken on the runtime.
func TestReadmeExample(t *testing.T) {
	if os.Getenv("SIPFAILOVER_DEEP") == "" {
		t.Skip("builds, tests and model-checks a copy of the repository: a deep check, run by .ci/run (SIPFAILOVER_DEEP=1)")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if keep := os.Getenv("WALKTHROUGH_DIR"); keep != "" {
		dir = keep // to look at the changed copy afterwards
	}
	copyRepo(t, root, dir)
	modelPath := filepath.Join(dir, "model", "line.yaml")
	src, err := os.ReadFile(modelPath)
	if err != nil {
		t.Fatal(err)
	}
	model := string(src)
	var goFiles []snippet
	var quoted []string // what the README shows the check print
	var commands []string
	for _, s := range snippets(t, string(readme)) {
		switch s.lang {
		case "":
			if quoted == nil {
				for _, l := range strings.Split(strings.TrimSpace(s.text), "\n") {
					if l != "..." {
						quoted = append(quoted, l)
					}
				}
			}
		case "yaml": // step 1
			model = addModelEntries(t, model, s.text)
			if err := os.WriteFile(modelPath, []byte(model), 0o644); err != nil {
				t.Fatal(err)
			}
		case "go": // steps 4 and 5, after the regeneration
			if s.path == "" {
				t.Fatalf("a Go block names no file:\n%s", s.text)
			}
			goFiles = append(goFiles, s)
		case "sh":
			commands = append(commands, strings.TrimSpace(s.text))
		}
	}
	if len(goFiles) != 3 || len(commands) != 2 {
		t.Fatalf("the example has %d Go files and %d command blocks; the test knows 3 and 2", len(goFiles), len(commands))
	}

	// Step 2: the check lists the states to give ignore lists; follow it
	// until it passes.
	unhandled := regexp.MustCompile(`state ([a-z_]+) neither handles nor ignores ([a-z._]+)`)
	for round := 0; ; round++ {
		out, err := run(t, dir, "go", "run", "./cmd/sipfailover", "check", "model/line.yaml")
		if err == nil {
			if round == 0 || !strings.Contains(out, "model/line.yaml: ok") {
				t.Fatalf("check after %d rounds of ignore lists: %s", round, out)
			}
			break
		}
		missing := unhandled.FindAllStringSubmatch(out, -1)
		if len(missing) == 0 || round == 5 {
			t.Fatalf("the check fails for another reason than ignore lists:\n%s", out)
		}
		if round == 0 {
			// What the README shows the check print, the place aside.
			if len(quoted) == 0 {
				t.Fatal("the README's example shows no output of the check")
			}
			for _, q := range quoted {
				re := regexp.MustCompile("(?m)^" + strings.Replace(regexp.QuoteMeta(q), "LINE:COL", `\d+:\d+`, 1) + "$")
				if !re.MatchString(out) {
					t.Errorf("the README quotes the check as printing %q; it printed:\n%s", q, out)
				}
			}
		}
		for _, m := range missing {
			model = ignore(t, model, m[1], m[2])
		}
		if err := os.WriteFile(modelPath, []byte(model), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Step 3; then steps 4 and 5: the build asks for NotifyRefresh.
	must(t, dir, "go", "generate", "./...")
	must(t, dir, "go", "test", "./gen", "-update")
	if out, err := run(t, dir, "go", "build", "./..."); err == nil || !strings.Contains(out, "NotifyRefresh") {
		t.Fatalf("the build did not ask for NotifyRefresh: %v\n%s", err, out)
	}
	for _, f := range goFiles {
		if err := os.WriteFile(filepath.Join(dir, f.path), []byte(f.text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Step 6.
	must(t, dir, "go", "vet", "./...")
	out := must(t, dir, "go", "test", "./gen", "./fsm", "./runtime", "./proptest")
	t.Logf("the tests of the changed copy:\n%s", out)

	// Step 8: the README's last command delivers the new event, and the
	// copy's program knows it as a user's event: with no agent to ask, it
	// fails on the control token, not on the event's name.
	event := strings.Fields(strings.TrimPrefix(commands[len(commands)-1], "go run ./cmd/sipfailover "))
	if len(event) < 2 || event[0] != "event" || !strings.Contains(model, "\n  "+event[len(event)-1]+":") {
		t.Fatalf("the README's last command %q delivers no event the example adds to the model", commands[len(commands)-1])
	}
	args := append([]string{"run", "./cmd/sipfailover"}, event[:len(event)-1]...)
	args = append(args, "-token-file", filepath.Join(dir, "no.token"), event[len(event)-1])
	if out, err := run(t, dir, "go", args...); err == nil || !strings.Contains(out, "control token") {
		t.Errorf("go %s: %v, want the control token missing:\n%s", strings.Join(args, " "), err, out)
	}

	// Step 7, where SPIN is installed (CI installs it): every property the
	// README shows holds of the changed model.
	if err := verify.Tools(); err != nil && os.Getenv("CI") == "" {
		t.Logf("step 7 not run: %v", err)
		return
	}
	out = must(t, dir, "go", "run", "./cmd/sipfailover", "verify", "-model", "line")
	t.Logf("the verifier on the changed model:\n%s", out)
	shown := regexp.MustCompile(`(?m)^   (line/\w+) .* holds$`).FindAllStringSubmatch(string(readme), -1)
	if len(shown) == 0 {
		t.Fatal("the README shows no verifier output")
	}
	for _, p := range shown {
		if !regexp.MustCompile(`(?m)^` + p[1] + ` .* holds$`).MatchString(out) {
			t.Errorf("%s does not hold of the changed model:\n%s", p[1], out)
		}
	}
}
