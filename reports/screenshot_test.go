package reports

import (
	"context"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

const chromium = "/usr/bin/chromium"

// TestHTMLScreenshot renders report.html with headless Chromium, opened from disk, and
// checks that a real page came out. Set SECRETSLAB_REPORT_SCREENSHOT=PATH to keep the PNG.
func TestHTMLScreenshot(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium not installed: HTML screenshot not taken")
	}
	dir := t.TempDir()
	if err := Write(dir, sampleReport()); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "report.png")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--screenshot="+shot, "--window-size=1280,1600",
		"file://"+filepath.Join(dir, HTMLFile))
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, tail(out, 2000))
	}
	fi, err := os.Stat(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v\n%s", err, tail(out, 2000))
	}
	if fi.Size() < 20_000 {
		t.Errorf("screenshot is %d bytes, too small for a rendered report", fi.Size())
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 1600 {
		t.Errorf("screenshot is %dx%d, want 1280x1600", b.Dx(), b.Dy())
	}
	colors := map[[3]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 4 {
		for x := b.Min.X; x < b.Max.X; x += 4 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colors[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
		}
	}
	if len(colors) < 20 {
		t.Errorf("screenshot has only %d colors: the page looks blank", len(colors))
	}
	if keep := os.Getenv("SECRETSLAB_REPORT_SCREENSHOT"); keep != "" {
		if err := copyFile(shot, keep); err != nil {
			t.Errorf("keep screenshot: %v", err)
		} else {
			t.Logf("screenshot kept at %s", keep)
		}
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func copyFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
