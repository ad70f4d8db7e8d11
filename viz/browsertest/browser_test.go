// Package browsertest loads the conc monitor page in a real headless
// Chromium while the demo pipeline runs, and checks what a person would see.
// It is a module of its own so that chromedp stays out of the root module.
package browsertest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/concpatterns/conc"
	"github.com/concpatterns/conc/internal/vizdemo"
)

var update = flag.Bool("update", false, "write the screenshot to docs/viz.png")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// browser finds Chromium: $CHROMIUM, then the usual names on PATH. Without
// one the test skips with an install hint, or fails when CI=true.
func browser(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium found: install it (Debian/Ubuntu: sudo apt-get install chromium) or set CHROMIUM to its path"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// nodeState is what the page shows for one node of the graph.
type nodeState struct {
	Name       string `json:"name"`
	Text       string `json:"text"`
	In         string `json:"in"`
	Kind       string `json:"kind"`
	Bottleneck string `json:"bottleneck"`
}

// TestPage starts the demo on 127.0.0.1, loads the page in headless
// Chromium, waits until every node of the graph shows items, and checks
// that the slow stage is marked as the bottleneck and that the stage named
// like an HTML tag shows as that text and created no element.
func TestPage(t *testing.T) {
	bin := browser(t)
	m := conc.NewMonitor()
	url, stop, err := vizdemo.Serve("127.0.0.1:0", m)
	require.NoError(t, err)
	defer func() { require.NoError(t, stop()) }()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- vizdemo.Run(ctx, m) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 600),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	// An alert would mean a name ran as script: record any dialog. Listen
	// also starts the browser, on a context without a deadline.
	dialogs := make(chan string, 4)
	require.NoError(t, chromedp.Listen(bctx, func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			select {
			case dialogs <- d.Message:
			default:
			}
		}
	}))
	tctx, tcancel := context.WithTimeout(bctx, 90*time.Second)
	defer tcancel()
	require.NoError(t, chromedp.Do(tctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`g.node`))))

	// Wait, without a time assertion, until every node shows items and the
	// recent window has filled enough for the bottleneck to be named.
	var nodes []nodeState
	const read = `Array.from(document.querySelectorAll("g.node")).map(g => ({
		name: g.querySelector("text.name").textContent,
		text: g.textContent,
		in: g.dataset.kind === "source" ? g.dataset.out : g.dataset.in,
		kind: g.dataset.kind,
		bottleneck: g.dataset.bottleneck,
	}))`
	for {
		nodes, err = chromedp.Run(tctx, chromedp.Evaluate[[]nodeState](read))
		require.NoError(t, err, "the page never showed every stage moving")
		if ready(nodes) {
			break
		}
		require.NoError(t, chromedp.Do(tctx, chromedp.Sleep(250*time.Millisecond)))
	}

	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name
	}
	assert.Equal(t, []string{"source", vizdemo.Hostile, vizdemo.FanOut, vizdemo.Slow, "batch#4 · " + vizdemo.Store, "out"}, names,
		"the hostile name shows as its own text")
	for _, n := range nodes {
		if n.Name == vizdemo.Slow {
			assert.Equal(t, "true", n.Bottleneck, "the slow stage is the bottleneck")
			assert.Contains(t, n.Text, "BOTTLENECK")
		} else {
			assert.Equal(t, "false", n.Bottleneck, "%s is not the bottleneck", n.Name)
		}
	}
	sub, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(`.pipeline .sub`)))
	require.NoError(t, err)
	assert.Contains(t, sub, "bottleneck: "+vizdemo.Slow)

	// Inert: the name made no element, and nothing ran.
	imgs, err := chromedp.Run(tctx, chromedp.Evaluate[int](`document.querySelectorAll("img").length`))
	require.NoError(t, err)
	hostileText, err := chromedp.Run(tctx, chromedp.Evaluate[bool](
		fmt.Sprintf(`Array.from(document.querySelectorAll("text.name")).some(t => t.textContent === %q)`, vizdemo.Hostile)))
	require.NoError(t, err)
	assert.Zero(t, imgs, "no <img> element anywhere on the page")
	assert.True(t, hostileText)
	select {
	case msg := <-dialogs:
		t.Fatalf("a dialog opened: %q", msg)
	default:
	}

	// Panels for the watched primitives.
	panels, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(`#panels`)))
	require.NoError(t, err)
	for _, want := range []string{"pools", "thumbnails", "breakers", "payments api", "limiters", "brokers", "events"} {
		assert.Contains(t, strings.ToLower(panels), want)
	}

	if *update {
		// Let the recent window fill and the breaker trip once, so the
		// picture shows rates and a timeline.
		for {
			trips, err := chromedp.Run(tctx, chromedp.Evaluate[bool](`document.querySelectorAll(".timeline span").length >= 2`))
			require.NoError(t, err)
			if trips {
				break
			}
			require.NoError(t, chromedp.Do(tctx, chromedp.Sleep(250*time.Millisecond)))
		}
		require.NoError(t, chromedp.Do(tctx, chromedp.Sleep(3*time.Second)))
		png, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		out, err := filepath.Abs(filepath.Join("..", "..", "docs", "viz.png"))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(out, png, 0o644))
		t.Logf("wrote %s", out)
	}
}

// ready reports whether every node shows a non-zero count and one is
// marked as the bottleneck.
func ready(nodes []nodeState) bool {
	if len(nodes) == 0 {
		return false
	}
	bn := false
	for _, n := range nodes {
		if n.In == "" || n.In == "0" {
			return false
		}
		bn = bn || n.Bottleneck == "true"
	}
	return bn
}
