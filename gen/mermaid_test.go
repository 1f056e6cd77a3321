package gen

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sipfailover/sipfailover/gen/internal/emit"
)

// mermaidJS finds the Mermaid the npm package ships (.ci/install-deps
// mermaid installs it): $MERMAID_JS, else the install's cache folder.
// Without it, or without Chromium, the test is skipped on a developer's
// machine and fails in CI.
func mermaidJS(t *testing.T) (js, browser string) {
	t.Helper()
	js = os.Getenv("MERMAID_JS")
	if js == "" {
		cache, err := os.UserCacheDir()
		if err == nil {
			js = filepath.Join(cache, "sipfailover", "mermaid", "node_modules", "mermaid", "dist", "mermaid.min.js")
		}
	}
	missing := ""
	if _, err := os.Stat(js); err != nil {
		missing = "Mermaid (.ci/install-deps mermaid)"
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		missing = "Chromium (.ci/install-deps chromium)"
	}
	if missing != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("no %s", missing)
		}
		t.Skipf("no %s here", missing)
	}
	return js, browser
}

// TestMermaidRenders renders the Mermaid pictures of every model, one a
// state as the docs show them, with the real Mermaid in headless Chromium,
// as a documentation site would: a parse or layout error fails it, and so
// does a state whose name is missing from its picture, or a picture wider
// than a page of 900 px.
func TestMermaidRenders(t *testing.T) {
	if testing.Short() {
		t.Skip("a real browser")
	}
	js, browser := mermaidJS(t)
	lib, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	ctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](string(lib)+";mermaid.initialize({startOnLoad: false}); 0")); err != nil {
		t.Fatalf("loading Mermaid: %v", err)
	}
	paths, _ := filepath.Glob("../model/*.yaml")
	if len(paths) == 0 {
		t.Fatal("no models")
	}
	text := regexp.MustCompile(`>([^<>]+)<`)
	for i, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		yaml, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		m, l := compile("model/"+name+".yaml", yaml)
		if l.String() != "" {
			t.Fatalf("%s has problems:\n%s", path, l.String())
		}
		t.Run(name, func(t *testing.T) {
			// The pictures the docs show, one a state, fit a page of
			// 900 px: their text stays the size Mermaid sets it.
			for j, s := range m.States {
				src := emit.MermaidFrom(m, s)
				script := fmt.Sprintf("mermaid.render('d%d_%d', %q).then(r => r.svg)", i, j, src)
				svg, err := chromedp.Run(ctx, chromedp.Evaluate[string](script, chromedp.EvalAwaitPromise))
				if err != nil {
					t.Fatalf("Mermaid cannot draw %s: %v\n%s", s.Name, err, src)
				}
				var shown []string
				for _, m := range text.FindAllStringSubmatch(svg, -1) {
					shown = append(shown, strings.TrimSpace(m[1]))
				}
				if !contains(shown, s.Name) {
					t.Errorf("state %s is not named in its picture", s.Name)
				}
				for _, bad := range []string{"#lt;", "#gt;", "#59;", "#58;", "&amp;lt;"} {
					if strings.Contains(svg, bad) {
						t.Errorf("the picture of %s prints %q", s.Name, bad)
					}
				}
				w := maxWidth.FindStringSubmatch(svg)
				if w == nil {
					t.Fatalf("%s: no max-width in the drawing", s.Name)
				}
				var width float64
				fmt.Sscan(w[1], &width)
				if width > 900 {
					t.Errorf("the picture of %s is %.0f px wide; a page of 900 px would shrink its text", s.Name, width)
				}
				if dir := os.Getenv("SIPFAILOVER_DIAGRAMS"); dir != "" {
					page := fmt.Sprintf("document.body.innerHTML = %q; 0", svg)
					if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](page)); err != nil {
						t.Fatal(err)
					}
					png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
					if err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(filepath.Join(dir, name+"-"+s.Name+".png"), png, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

// maxWidth is the width Mermaid gives its drawing: style="max-width: 812.5px;".
var maxWidth = regexp.MustCompile(`max-width: ([0-9.]+)px`)

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestOverviewFitsAPage: each model's overview, drawn by Graphviz, is at
// most 900 pt wide with text of 11 pt and more: at a page width of 900 px
// (scaled by at most 0.75) no text is smaller than 11 px.
func TestOverviewFitsAPage(t *testing.T) {
	dot, err := exec.LookPath("dot")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("no Graphviz dot (.ci/install-deps graphviz)")
		}
		t.Skip("no Graphviz dot here")
	}
	paths, _ := filepath.Glob("../model/*.yaml")
	size := regexp.MustCompile(`<svg width="([0-9.]+)pt"`)
	fonts := regexp.MustCompile(`fontsize=([0-9.]+)`)
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		yaml, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		m, l := compile("model/"+name+".yaml", yaml)
		if l.String() != "" {
			t.Fatalf("%s has problems:\n%s", path, l.String())
		}
		src := emit.OverviewDot(m)
		svg, err := renderSVG(dot, src)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		w := size.FindSubmatch(svg)
		if w == nil {
			t.Fatalf("%s: no width in the SVG", name)
		}
		var width float64
		fmt.Sscan(string(w[1]), &width)
		if width > 900 {
			t.Errorf("%s: the overview is %.0f pt wide; at 900 px its text would be under 11 px", name, width)
		}
		for _, f := range fonts.FindAllSubmatch(src, -1) {
			var pt float64
			fmt.Sscan(string(f[1]), &pt)
			if pt < 11 {
				t.Errorf("%s: a font of %v pt", name, pt)
			}
		}
	}
}
