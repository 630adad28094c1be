// Package chromiumtest renders a page in headless Chromium for tests that
// must see what a person would: the reports a run writes.
package chromiumtest

import (
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// EnvRequire, when "1", makes a test fail instead of skipping when no
// Chromium is installed (CI sets it).
const EnvRequire = "REPRICER_REQUIRE_CHROMIUM"

// hangLimit ends a Chromium that never returns; it is no speed margin.
const hangLimit = 5 * time.Minute

// Screenshot renders the HTML file at page in headless Chromium, 1200
// pixels wide, and returns the picture. Without Chromium on PATH the test
// is skipped, or failed when EnvRequire is "1".
func Screenshot(t testing.TB, page string) image.Image {
	t.Helper()
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("%s=1 but no chromium on PATH (apt-get install chromium)", EnvRequire)
		}
		t.Skipf("no chromium on PATH; set %s=1 to make this a failure", EnvRequire)
	}
	dir := t.TempDir()
	shot := filepath.Join(dir, "out.png")
	ctx, cancel := context.WithTimeout(context.Background(), hangLimit)
	defer cancel()
	// The flags keep Chromium off the network this machine does not have.
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--screenshot="+shot, "--window-size=1200,1600", "file://"+page)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v\n%s", err, out)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	return img
}
