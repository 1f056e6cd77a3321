package settings

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sipfailover/sipfailover/internal/suggest"
)

// FileError lists everything wrong with a settings file at once, each
// problem at its line and column as a compiler reports them: YAML that
// does not parse (then nothing more is read), a field no setting has, a
// value of the wrong kind, and every value the checks refuse
// ("lines[0] (lobby).retry_time: ..."), at the value or, for a setting left
// out, at the block it belongs to.
type FileError struct {
	Path     string // the file, when known
	Problems []Position
	// Invalid holds the value problems among them as Validate reports
	// them; nil when there are none. errors.As finds it.
	Invalid *ValidationError
}

// Unwrap is the value problems, for errors.As.
func (e *FileError) Unwrap() error {
	if e.Invalid == nil {
		return nil
	}
	return e.Invalid
}

// Position is one problem at a place in a settings file.
type Position struct {
	Line, Col int // from 1; 0 when unknown
	Msg       string
}

func (e *FileError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		where := e.Path
		if p.Line > 0 {
			where = strings.TrimPrefix(where+fmt.Sprintf(":%d:%d", p.Line, p.Col), ":")
		}
		if where != "" {
			where += ": "
		}
		b.WriteString(where + p.Msg)
	}
	return b.String()
}

// ErrEmptySettings is a settings file with nothing in it.
var ErrEmptySettings = errors.New("the settings file is empty: it needs a lines: list (see docs/settings.md)")

// yamlLine finds the line number in a YAML library message.
var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// decodeSettings parses data into c and returns the document: YAML syntax
// first (a file that does not parse is a *FileError at once), then every
// field name against the settings there are and the values' kinds, whose
// problems it returns; the rest of the file is read all the same.
func decodeSettings(data []byte, c *Config) (*yaml.Node, []Position, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		probs := yamlProblems(err)
		if line := firstBadLine(data); line > 0 && len(probs) == 1 {
			probs[0].Line, probs[0].Col = line, 1
		}
		return nil, nil, &FileError{Problems: probs}
	}
	if len(root.Content) == 0 {
		return nil, nil, ErrEmptySettings
	}
	doc := root.Content[0]
	var probs []Position
	knownFields(doc, reflect.TypeOf(*c), &probs)
	if err := doc.Decode(c); err != nil {
		for _, p := range yamlProblems(err) {
			probs = append(probs, kindProblem(doc, p))
		}
	}
	return doc, probs, nil
}

// quoted is the value a YAML library message quotes: cannot unmarshal
// !!str `many` into int.
var quoted = regexp.MustCompile("`([^`]*)`")

// kindProblem places a value of the wrong kind, which the YAML library
// gives by its line only, at the value itself and names its setting:
// "lines[0] (lobby).servers[1].port: cannot unmarshal !!str `many` into int".
func kindProblem(doc *yaml.Node, p Position) Position {
	m := quoted.FindStringSubmatch(p.Msg)
	if m == nil || p.Line == 0 {
		return p
	}
	var walk func(n *yaml.Node, name string) bool
	walk = func(n *yaml.Node, name string) bool {
		switch n.Kind {
		case yaml.ScalarNode:
			if n.Line == p.Line && n.Value == m[1] {
				p.Col, p.Msg = n.Column, strings.TrimPrefix(name+": ", ": ")+p.Msg
				return true
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				key := n.Content[i].Value
				if name != "" {
					key = name + "." + key
				}
				if walk(n.Content[i+1], key) {
					return true
				}
			}
		case yaml.SequenceNode:
			for i, item := range n.Content {
				at := fmt.Sprintf("%s[%d]", name, i)
				if name == "lines" {
					if l := child(item, "name"); l != nil && l.Value != "" {
						at += " (" + l.Value + ")"
					}
				}
				if walk(item, at) {
					return true
				}
			}
		}
		return false
	}
	walk(doc, "")
	return p
}

// firstBadLine returns the first line at which the file stops being YAML:
// the library reports some errors at the start of the block they break (a
// bad indent at line 1), so the shortest prefix that fails names the line.
// 0 when it cannot tell.
func firstBadLine(data []byte) int {
	lines := strings.SplitAfter(string(data), "\n")
	if len(lines) > 5000 {
		return 0
	}
	var prefix strings.Builder
	for i, l := range lines {
		prefix.WriteString(l)
		var n yaml.Node
		if yaml.Unmarshal([]byte(prefix.String()), &n) != nil {
			return i + 1
		}
	}
	return 0
}

// yamlProblems turns the YAML library's errors into positions.
func yamlProblems(err error) []Position {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var out []Position
	for _, m := range msgs {
		p := Position{Msg: strings.TrimPrefix(m, "yaml: ")}
		if sub := yamlLine.FindStringSubmatch(m); sub != nil {
			p.Line, _ = strconv.Atoi(sub[1])
			p.Col, p.Msg = 1, sub[2]
		}
		out = append(out, p)
	}
	return out
}

// knownFields reports every mapping key under n that t, the Go type the
// node decodes into, has no yaml field for, with a suggestion.
func knownFields(n *yaml.Node, t reflect.Type, probs *[]Position) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
		for _, item := range n.Content {
			knownFields(item, t.Elem(), probs)
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		fields := map[string]reflect.Type{}
		var names []string
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name != "" && name != "-" {
				fields[name] = f.Type
				names = append(names, name)
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			ft, ok := fields[key.Value]
			if !ok {
				msg := fmt.Sprintf("unknown field %q", key.Value) + suggest.Hint(key.Value, names)
				*probs = append(*probs, Position{key.Line, key.Column, msg})
				continue
			}
			knownFields(val, ft, probs)
		}
	}
}

// Parse reads and validates a settings file's contents, and reports every
// problem of it in one *FileError. Unknown fields are errors, so that a
// misspelt setting is not silently ignored.
func Parse(data []byte) (Config, error) {
	var c Config
	doc, probs, err := decodeSettings(data, &c)
	if err != nil {
		return Config{}, err
	}
	var invalid *ValidationError
	switch err := c.Validate(); {
	case errors.As(err, &invalid):
		kinds := slices.Clone(probs)
		for _, p := range invalid.Problems {
			at, exact := place(doc, p)
			// A value of the wrong kind was reported where it stands: what
			// the checks say of the zero it left, or of a setting left out
			// that takes its value from it, is no news.
			if slices.ContainsFunc(kinds, func(q Position) bool {
				return strings.Contains(q.Msg, "cannot unmarshal") && (q.Line == at.Line || !exact && strings.HasPrefix(q.Msg, lineOf(at.Msg)))
			}) {
				continue
			}
			probs = append(probs, at)
		}
	case err != nil && len(probs) == 0:
		return Config{}, err
	}
	if len(probs) == 0 {
		return c, nil
	}
	slices.SortStableFunc(probs, func(a, b Position) int { return cmp.Or(a.Line-b.Line, a.Col-b.Col) })
	return Config{}, &FileError{Problems: probs, Invalid: invalid}
}

// lineOf is the line a message names at its start: "lines[0] (lobby)." of
// "lines[0] (lobby).t1: ...", or "" for another block.
func lineOf(msg string) string {
	if !strings.HasPrefix(msg, "lines[") {
		return ""
	}
	if name, _, ok := strings.Cut(msg, ")."); ok && strings.Contains(name, " (") {
		return name + ")."
	}
	name, _, _ := strings.Cut(msg, "].")
	return name + "]."
}

// place is where in the document a value problem stands, with its message
// named by its path ("lines[0] (lobby).servers[1].port: ..."): at the
// value (exact), or at the nearest block the file has when it left the
// setting out.
func place(doc *yaml.Node, p Problem) (at Position, exact bool) {
	var path []string
	switch {
	case p.Index >= 0:
		path = []string{"lines", strconv.Itoa(p.Index)}
	case p.Line == "web" || p.Line == "dns":
		path = []string{p.Line}
	}
	name := strings.Join(path, ".")
	if p.Index >= 0 {
		name = fmt.Sprintf("lines[%d]", p.Index)
		if _, n, ok := strings.Cut(p.Line, " ("); ok {
			name += " (" + n
		}
	}
	for _, part := range strings.FieldsFunc(p.Field, func(r rune) bool { return r == '.' || r == '[' || r == ']' }) {
		path = append(path, part)
	}
	if name != "" {
		name += "."
	}
	at = Position{Msg: name + p.Field + ": " + p.Msg}
	n := doc
	for _, key := range path {
		at.Line, at.Col = n.Line, n.Column
		if n = child(n, key); n == nil {
			return at, false
		}
	}
	at.Line, at.Col = n.Line, n.Column
	return at, true
}

// child is the value under key in a mapping, or the item at index key in
// a sequence; nil when there is none.
func child(n *yaml.Node, key string) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i+1]
			}
		}
	case yaml.SequenceNode:
		if i, err := strconv.Atoi(key); err == nil && i >= 0 && i < len(n.Content) {
			return n.Content[i]
		}
	}
	return nil
}

// TLSConfig returns the client TLS settings: the CA file's roots if set.
func (c Config) TLSConfig() (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLSCAFile == "" {
		return conf, nil
	}
	pem, err := os.ReadFile(c.TLSCAFile)
	if err != nil {
		return nil, fmt.Errorf("tls_ca_file: %w", err)
	}
	conf.RootCAs = x509.NewCertPool()
	if !conf.RootCAs.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls_ca_file: %s holds no PEM certificate", c.TLSCAFile)
	}
	return conf, nil
}

// Load reads and validates a settings file.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	c, err := Parse(data)
	var fe *FileError
	switch {
	case errors.As(err, &fe):
		fe.Path = path
		return Config{}, fe
	case err != nil:
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Save validates c and stores it at path atomically (R15): it writes
// a temporary file beside path, syncs it, renames it over path and syncs
// the folder, so a crash at any moment leaves either the old settings or
// the new ones, whole. A config with any problem is not written.
func Save(path string, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	data, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // gone after the rename; removes a failed attempt
	if info, err := os.Stat(path); err == nil {
		f.Chmod(info.Mode().Perm()) // keep the old file's permissions: it holds passwords
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
