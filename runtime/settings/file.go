package settings

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sipfailover/sipfailover/internal/suggest"
)

// SyntaxError lists what is wrong with a settings file before its values
// are checked: YAML that does not parse, a field no setting has, a value of
// the wrong kind. Each problem has its line and column, as a compiler
// reports them.
type SyntaxError struct {
	Path     string // the file, when known
	Problems []Position
}

// Position is one problem at a place in a settings file.
type Position struct {
	Line, Col int // from 1; 0 when unknown
	Msg       string
}

func (e *SyntaxError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		where := e.Path
		if p.Line > 0 {
			where += fmt.Sprintf(":%d:%d", p.Line, p.Col)
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

// decodeSettings parses data into c: YAML syntax, then every field name
// against the settings there are, then the values' kinds.
func decodeSettings(data []byte, c *Config) error {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		probs := yamlProblems(err)
		if line := firstBadLine(data); line > 0 && len(probs) == 1 {
			probs[0].Line, probs[0].Col = line, 1
		}
		return &SyntaxError{Problems: probs}
	}
	if len(root.Content) == 0 {
		return ErrEmptySettings
	}
	var probs []Position
	knownFields(root.Content[0], reflect.TypeOf(*c), &probs)
	if len(probs) > 0 {
		return &SyntaxError{Problems: probs}
	}
	if err := root.Content[0].Decode(c); err != nil {
		return &SyntaxError{Problems: yamlProblems(err)}
	}
	return nil
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

// Parse reads and validates a settings file's contents. Unknown fields
// are errors, so that a misspelt setting is not silently ignored.
func Parse(data []byte) (Config, error) {
	var c Config
	if err := decodeSettings(data, &c); err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
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
	var se *SyntaxError
	switch {
	case errors.As(err, &se):
		se.Path = path
		return Config{}, se
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
