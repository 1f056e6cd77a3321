package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sipfailover/sipfailover/cmd/sipfailover/web"
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
	settings := settings([2]int{rs[0].Port(), rs[1].Port()}) +
		"    keepalive_interval: 200ms\n" +
		fmt.Sprintf("web:\n  listen: %s\n  password_hash: %q\n", webAddr, hash)
	_, path := runAgent(t, settings)
	eventually(t, "the line registers on the primary", primary.Registered)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.WindowSize(1200, 1000), chromedp.DisableGPU)
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

	// Log in; the page asked for comes after. The first call starts the
	// browser, so it has no timeout of its own (chromedp.Run's rule).
	if err := chromedp.Do(bctx, chromedp.Navigate(site+"/line")); err != nil {
		t.Fatal(err)
	}
	browse(t, bctx, "log in",
		chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("password"), "pages-pw"),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("server2_addr")))
	if at, err := chromedp.Run(bctx, chromedp.Location()); err != nil || !strings.HasSuffix(at, "/line") {
		t.Fatalf("after login the browser is at %s (%v), want the line page", at, err)
	}

	// A bad port is refused beside its field; nothing changes.
	browse(t, bctx, "submit a bad port",
		chromedp.SetValue(chromedp.ID("server1_port"), "70000"),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("server1_port-error")),
		shot("web-line-error.png"))
	if msg, err := chromedp.Run(bctx, chromedp.Text(chromedp.ID("server1_port-error"))); err != nil || !strings.Contains(msg, "70000 is outside 1-65535") {
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
