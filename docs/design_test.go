package docs

import (
	"errors"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/sipfailover/sipfailover/"

// TestDesignPictureIsTheImports: the picture of the packages in
// design.md has exactly the imports between the project's packages that
// the code has, no more and no fewer.
func TestDesignPictureIsTheImports(t *testing.T) {
	drawn := drawnImports(t, readDesign(t))
	actual := codeImports(t)
	for _, e := range actual {
		if !slices.Contains(drawn, e) {
			t.Errorf("design.md does not draw %s --> %s, which the code imports", e[0], e[1])
		}
	}
	for _, e := range drawn {
		if !slices.Contains(actual, e) {
			t.Errorf("design.md draws %s --> %s, which the code does not import", e[0], e[1])
		}
	}
}

// TestDesignPathsHold: every function design.md's paths name is declared
// in the file named beside it, and is called in the body of a function
// named above it in the same table.
func TestDesignPathsHold(t *testing.T) {
	tables := designPaths(readDesign(t))
	if len(tables) < 4 {
		t.Fatalf("design.md has %d paths through the code, want the 200, 401, 503 and timer paths", len(tables))
	}
	files := map[string]*ast.File{}
	for _, table := range tables {
		var above []*ast.FuncDecl
		for _, row := range table {
			f := files[row.file]
			if f == nil {
				var err error
				f, err = parser.ParseFile(token.NewFileSet(), filepath.Join("..", row.file), nil, 0)
				if err != nil {
					t.Fatalf("step %s: %v", row.step, err)
				}
				files[row.file] = f
			}
			fn := declared(f, row.fn)
			if fn == nil {
				t.Errorf("step %s: %s declares no %s", row.step, row.file, row.fn)
				continue
			}
			name := fn.Name.Name
			if len(above) > 0 && !slices.ContainsFunc(above, func(d *ast.FuncDecl) bool { return calls(d, name) }) {
				t.Errorf("step %s: no step above it calls %s", row.step, row.fn)
			}
			above = append(above, fn)
		}
	}
}

func readDesign(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("design.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var (
	nodeLine = regexp.MustCompile(`^\s+(\w+)\["([\w/]+)"\]$`)
	edgeLine = regexp.MustCompile(`^\s+(\w+) --> (\w+)$`)
)

// drawnImports reads the edges of the mermaid picture, as package paths.
func drawnImports(t *testing.T, doc string) [][2]string {
	_, block, ok := strings.Cut(doc, "```mermaid\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("design.md has no mermaid picture")
	}
	nodes := map[string]string{}
	var edges [][2]string
	for _, line := range strings.Split(block, "\n") {
		if m := nodeLine.FindStringSubmatch(line); m != nil {
			nodes[m[1]] = m[2]
		} else if m := edgeLine.FindStringSubmatch(line); m != nil {
			from, to := nodes[m[1]], nodes[m[2]]
			if from == "" || to == "" {
				t.Fatalf("design.md: %q joins a node it never names", strings.TrimSpace(line))
			}
			edges = append(edges, [2]string{from, to})
		}
	}
	return edges
}

// codeImports lists every import from one package of the project to
// another, by the packages' paths in the repository, tests left out.
func codeImports(t *testing.T) [][2]string {
	var edges [][2]string
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if name := d.Name(); path != ".." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
			return filepath.SkipDir
		}
		pkg, err := build.ImportDir(path, 0)
		var none *build.NoGoError
		if errors.As(err, &none) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("..", path)
		for _, imp := range pkg.Imports {
			if dep, ok := strings.CutPrefix(imp, module); ok {
				edges = append(edges, [2]string{filepath.ToSlash(rel), dep})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(edges) == 0 {
		t.Fatal("no imports found between the project's packages")
	}
	return edges
}

type pathStep struct{ step, file, fn string }

var stepRow = regexp.MustCompile("^\\| (\\d+) \\| `([^`]+)` \\| `([^`]+)` \\|")

// designPaths reads the tables of steps, one for each path.
func designPaths(doc string) [][]pathStep {
	var tables [][]pathStep
	in := false
	for _, line := range strings.Split(doc, "\n") {
		m := stepRow.FindStringSubmatch(line)
		switch {
		case m == nil:
			in = false
		case !in:
			tables = append(tables, nil)
			in = true
			fallthrough
		default:
			tables[len(tables)-1] = append(tables[len(tables)-1], pathStep{m[1], m[2], m[3]})
		}
	}
	return tables
}

// declared finds the function or method (Type.Name) name in f.
func declared(f *ast.File, name string) *ast.FuncDecl {
	recv, fn, isMethod := strings.Cut(name, ".")
	if !isMethod {
		fn, recv = recv, ""
	}
	for _, d := range f.Decls {
		d, ok := d.(*ast.FuncDecl)
		if !ok || d.Name.Name != fn || (d.Recv == nil) != (recv == "") {
			continue
		}
		if recv == "" || receiverName(d.Recv.List[0].Type) == recv {
			return d
		}
	}
	return nil
}

func receiverName(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.StarExpr:
		return receiverName(x.X)
	case *ast.IndexExpr:
		return receiverName(x.X)
	case *ast.Ident:
		return x.Name
	}
	return ""
}

// calls says whether d's body calls a function or method named name,
// directly or through an interface or a closure it builds.
func calls(d *ast.FuncDecl, name string) bool {
	found := false
	ast.Inspect(d.Body, func(n ast.Node) bool {
		if c, ok := n.(*ast.CallExpr); ok {
			switch f := c.Fun.(type) {
			case *ast.Ident:
				found = found || f.Name == name
			case *ast.SelectorExpr:
				found = found || f.Sel.Name == name
			}
		}
		return !found
	})
	return found
}
