package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sipfailover/sipfailover/cmd/sipfailover/web"
	"github.com/sipfailover/sipfailover/runtime/settings"
)

// screenshots, when set, is the folder the browser test saves its
// screenshots to (docs/ holds the ones the README shows):
//
//	SIPFAILOVER_SCREENSHOTS=$PWD/docs go test ./cmd/sipfailover -run TestPagesInBrowser
var screenshots = os.Getenv("SIPFAILOVER_SCREENSHOTS")

// chromium finds Debian's Chromium. Without it the browser test is skipped
// on a developer's machine and fails in CI, which installs it
// (.ci/install-deps chromium).
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no Chromium: .ci/install-deps chromium installs it")
	}
	t.Skip("no Chromium here (.ci/install-deps chromium installs Debian's)")
	return ""
}

// TestPagesInBrowser: R14, R15 in a real browser. Log in; change the
// backup of line 1 to a new server; submit; the line re-registers; the
// primary dies and the line fails over to the new backup, and the status
// page's highlighted state follows it live. A port of 70000 is refused
// beside its field and changes nothing.
func TestPagesInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("a real browser")
	}
	browser := chromium(t)
	rs := startRegistrars(t, "primary", "backup", "new backup")
	primary, newBackup := rs[0], rs[2]
	hash, err := web.HashPassword("pages-pw")
	if err != nil {
		t.Fatal(err)
	}
	webAddr := freeAddr(t)
	src := settingsFile([2]int{rs[0].Port(), rs[1].Port()}) +
		"    keepalive_interval: 200ms\n" +
		fmt.Sprintf("web:\n  listen: %s\n  password_hash: %q\n", webAddr, hash)
	_, path := runAgent(t, src)
	eventually(t, "the line registers on the primary", primary.Registered)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.WindowSize(900, 1000), chromedp.DisableGPU)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	site := "http://" + webAddr
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			if screenshots == "" {
				return nil
			}
			png, err := chromedp.FullScreenshot(100)(ctx, tg) // 100: PNG; less is JPEG
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(screenshots, name), png, 0o644)
		})
	}

	logIn(t, bctx, site)
	if at, err := chromedp.Run(bctx, chromedp.Location()); err != nil || !strings.HasSuffix(at, "/line") {
		t.Fatalf("after login the browser is at %s (%v), want the line page", at, err)
	}

	// A bad port is refused beside its field; nothing changes.
	browse(t, bctx, "submit a bad port",
		chromedp.SetValue(chromedp.ID("server1_port"), "70000"),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("server1_port-error")),
		shot("web-line-error.png"))
	if msg, err := chromedp.Run(bctx, chromedp.Text(chromedp.ID("server1_port-error"))); err != nil || !strings.Contains(msg, "70000 is outside 0-65535") {
		t.Fatalf("beside the port: %q (%v)", msg, err)
	}
	if n, _ := registers(newBackup); n != 0 {
		t.Fatal("the refused form reached a server")
	}

	// The new backup, submitted.
	browse(t, bctx, "change the backup",
		chromedp.Navigate(site+"/line?line=1"),
		chromedp.WaitVisible(chromedp.ID("server2_port")),
		chromedp.SetValue(chromedp.ID("server2_port"), strconv.Itoa(newBackup.Port())),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("saved")),
		shot("web-line.png"))
	stored, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(stored), "port: "+strconv.Itoa(newBackup.Port())) {
		t.Fatalf("the settings file does not hold the new backup (%v):\n%s", err, stored)
	}
	eventually(t, "the changed line registers again on the primary", func() bool {
		_, un := registers(primary)
		return un > 0 && primary.Registered()
	})

	// The status page follows a failover live.
	browse(t, bctx, "open the status page",
		chromedp.Navigate(site+"/status"),
		chromedp.WaitReady(chromedp.CSS("g#state_primary_registered.current")))
	primary.Stop()
	browse(t, bctx, "watch the failover",
		chromedp.WaitReady(chromedp.CSS("g#state_backup_registered.current")),
		chromedp.WaitReady(chromedp.Search(`//td[@class="server"][contains(., "`+strconv.Itoa(newBackup.Port())+`")]`)),
		shot("web-status.png"))
	if !newBackup.Registered() {
		t.Fatal("the line failed over, but not to the new backup")
	}

	// On a phone's screen (390 px) each line is a card, not a table row
	// wider than the screen.
	browse(t, bctx, "look at the status page on a phone", chromedp.EmulateViewport(390, 844), chromedp.Reload(),
		chromedp.WaitReady(chromedp.CSS("#lines td.state")))
	display, err := chromedp.Run(bctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("#lines td.state")).display`))
	if err != nil || display != "block" {
		t.Errorf("on 390 px a line's cells are displayed %q (%v), want block: a card", display, err)
	}
	browse(t, bctx, "the status page on a phone", shot("web-status-390.png"))
	fitsAPhone(t, bctx, "the status page")
	// Where the diagram's text would be specks, a list says where the
	// line's state leads: from the backup, a probe of the primary.
	if next, err := chromedp.Run(bctx, chromedp.Text(chromedp.ID("next"))); err != nil || !strings.Contains(next, "backup_registered") || !strings.Contains(next, "probing on") || !strings.Contains(next, "timer.failback") {
		t.Errorf("on 390 px the status page says what happens next as %q (%v), want the ways out of backup_registered", next, err)
	}
	// Log out stays one line; the header does not wrap.
	if h, err := chromedp.Run(bctx, chromedp.Evaluate[float64](`document.querySelector("header button").getBoundingClientRect().height`)); err != nil || h > 32 {
		t.Errorf("on 390 px the Log out button is %.0f px high (%v): its words wrap", h, err)
	}
	browse(t, bctx, "the line page on a phone", chromedp.Navigate(site+"/line?line=1"), chromedp.WaitVisible(chromedp.ID("server2_port")),
		shot("web-line-390.png"))
	fitsAPhone(t, bctx, "the line page")
}

// fitsAPhone fails the test when the page in ctx is wider than a phone's
// screen of 390 px (it would scroll sideways) or any of its form fields
// reaches past the screen's edge.
func fitsAPhone(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
	if err != nil || wide {
		t.Errorf("on 390 px %s scrolls sideways (%v)", page, err)
	}
	past, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("input, select, button")).filter(function (e) { return e.getBoundingClientRect().right > window.innerWidth; }).map(function (e) { return e.id || e.name || e.tagName; })`))
	if err != nil || len(past) > 0 {
		t.Errorf("on 390 px %s has fields past the screen's edge: %v (%v)", page, past, err)
	}
}

// logIn opens the Line page of site, logs in with the test's password and
// waits for the page. The first call starts the browser, so it has no
// timeout of its own (chromedp.Run's rule).
func logIn(t *testing.T, ctx context.Context, site string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(site+"/line")); err != nil {
		t.Fatal(err)
	}
	browse(t, ctx, "log in",
		chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("password"), "pages-pw"),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("server2_addr")))
}

// browse runs steps in the browser, each group within 20 seconds.
func browse(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestAnotherSiteCannotChangeAnything: items 1 and 4 of the settings issue,
// in a real browser logged in to the pages. A page of another origin
// auto-submits forms and fetches against the status port's call API and
// the pages' settings: no call is placed and the file does not change.
// Then a Submit of the unchanged Line form re-registers nothing, and after
// it and a SIGHUP a 503 from the primary still fails the line over (the
// save once wrote unavailable_codes: [] and turned that off).
func TestAnotherSiteCannotChangeAnything(t *testing.T) {
	if testing.Short() {
		t.Skip("a real browser")
	}
	browser := chromium(t)
	rs := startRegistrars(t, "primary", "backup")
	primary, backup := rs[0], rs[1]
	hash, err := web.HashPassword("pages-pw")
	if err != nil {
		t.Fatal(err)
	}
	webAddr, statusAddr := freeAddr(t), freeAddr(t)
	path := filepath.Join(t.TempDir(), "lines.yaml")
	src := settingsFile([2]int{primary.Port(), backup.Port()}) + "    keepalive_interval: 200ms\n" +
		fmt.Sprintf("web:\n  listen: %s\n  password_hash: %q\n", webAddr, hash)
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	reload := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, serveOptions{config: path, statusAddr: statusAddr, tokenFile: testToken(path)}, reload, slog.New(slog.DiscardHandler))
	}()
	t.Cleanup(func() { cancel(); <-done })
	eventually(t, "the line registers on the primary", primary.Registered)

	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><body>
<iframe name="a"></iframe><iframe name="b"></iframe>
<form id="call" method="post" action="http://%[1]s/api/calls" target="a"><input name="line" value="1"><input name="to" value="sip:900@127.0.0.1"></form>
<form id="line" method="post" action="http://%[2]s/line?line=1" target="b"><input name="server1_addr" value="203.0.113.9">
<input name="server1_port" value="5060"><input name="server1_ttl" value="3600"><input name="server1_transport" value="0">
<input name="server2_addr" value="203.0.113.10"><input name="server2_port" value="5060"><input name="server2_ttl" value="3600">
<input name="server2_transport" value="0"><input name="enable_failback" value="1"><input name="failback_interval" value="60">
<input name="signal_retry_counts" value="3"></form>
<script>
document.getElementById("call").submit();
document.getElementById("line").submit();
fetch("http://%[1]s/api/calls", {method: "POST", mode: "no-cors", body: '{"line": "1", "to": "sip:901@127.0.0.1"}'}).catch(() => {});
fetch("http://%[2]s/api/settings", {method: "PUT", mode: "no-cors", credentials: "include", body: '{"lines": []}'}).catch(() => {});
setTimeout(() => document.body.insertAdjacentHTML("beforeend", "<p id=done>done</p>"), 1500);
</script></body>`, statusAddr, webAddr)
	}))
	defer evil.Close()

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	site := "http://" + webAddr
	logIn(t, bctx, site)
	before, _ := os.ReadFile(path)
	n0, _ := registers(primary)
	browse(t, bctx, "open another site's page", chromedp.Navigate(evil.URL), chromedp.WaitVisible(chromedp.ID("done")))
	for _, s := range primary.Seen() {
		if s.Method == "INVITE" {
			t.Fatalf("a page of another site placed a call: %+v", s)
		}
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatalf("a page of another site changed the settings:\n%s", after)
	}

	// Submit the unchanged form: stored, and no line re-registers.
	browse(t, bctx, "submit the unchanged form",
		chromedp.Navigate(site+"/line?line=1"),
		chromedp.WaitVisible(chromedp.ID("server2_addr")),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("saved")))
	if n, un := registers(primary); n != n0 || un != 0 {
		t.Fatalf("an unchanged Submit re-registered: %d REGISTERs more, %d de-registrations", n-n0, un)
	}
	saved, err := settings.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if codes := saved.Lines[0].Defaults().UnavailableCodes; !slices.Equal(codes, []int{500, 503}) {
		t.Fatalf("after a Submit the file's unavailable codes are %v", codes)
	}

	// A SIGHUP, then a 503: the line still fails over.
	reload <- struct{}{}
	primary.SetAnswer(503, 0)
	eventually(t, "the line fails over on a 503 after a Submit and a reload", backup.Registered)
}
