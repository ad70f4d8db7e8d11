package viz

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/concpatterns/conc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const hostile = `<img src=x onerror=alert(1)>`

// server runs one pipeline with a hostile stage name to completion and
// serves its monitor.
func server(t *testing.T) *httptest.Server {
	t.Helper()
	m := conc.NewMonitor()
	s := conc.Monitored(m, "<script>alert(2)</script>", conc.Then(
		conc.Map(func(_ context.Context, v int) (int, error) { return v, nil }, conc.Named(hostile)),
		conc.Map(func(_ context.Context, v int) (int, error) { return v, nil }, conc.Named("second"))))
	_, err := conc.Collect(context.Background(), s, func(yield func(int) bool) {
		for i := range 10 {
			if !yield(i) {
				return
			}
		}
	})
	require.NoError(t, err)
	m.Watch("<b>pool</b>", conc.NewFanIn[int](t.Context()))
	srv := httptest.NewServer(http.StripPrefix("/debug/conc", Handler(m)))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, method, path string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	require.NoError(t, err)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func TestPageAndAssets(t *testing.T) {
	srv := server(t)
	for path, ctype := range map[string]string{
		"/debug/conc/":             "text/html; charset=utf-8",
		"/debug/conc/app.js":       "text/javascript; charset=utf-8",
		"/debug/conc/style.css":    "text/css; charset=utf-8",
		"/debug/conc/snapshot.txt": "text/plain; charset=utf-8",
	} {
		resp, body := get(t, srv, http.MethodGet, path)
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		assert.Equal(t, ctype, resp.Header.Get("Content-Type"), path)
		assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self'", path)
		assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), path)
		assert.NotEmpty(t, body, path)
	}
	resp, body := get(t, srv, http.MethodGet, "/debug/conc/")
	assert.NotContains(t, body, "http://", "no CDN, nothing from elsewhere")
	assert.NotContains(t, body, "https://")
	assert.NotContains(t, body, hostile, "the page itself carries no user string")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp, body = get(t, srv, http.MethodHead, "/debug/conc/")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Empty(t, body)
}

// Names reach the page only as JSON, with < and > escaped, and the script
// puts them into the page as text: it never parses a string as HTML.
func TestUserStringsAreEscaped(t *testing.T) {
	srv := server(t)
	_, body := get(t, srv, http.MethodGet, "/debug/conc/snapshot.json")
	assert.NotContains(t, body, "<img")
	assert.NotContains(t, body, "<script")
	assert.Contains(t, body, `\u003cimg src=x onerror=alert(1)\u003e`)
	assert.Contains(t, body, `\u003cscript\u003ealert(2)\u003c/script\u003e`)
	_, js := get(t, srv, http.MethodGet, "/debug/conc/app.js")
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "DOMParser"} {
		assert.NotContains(t, js, sink)
	}
	assert.Contains(t, js, "textContent")
}

func TestSnapshotQuery(t *testing.T) {
	srv := server(t)
	resp, body := get(t, srv, http.MethodGet, "/debug/conc/snapshot.json?pretty=true")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	assert.Contains(t, body, "\n  \"pipelines\": [")
	_, body = get(t, srv, http.MethodGet, "/debug/conc/snapshot.json?pipeline=none")
	assert.Contains(t, body, `"pipelines":[]`)
	_, body = get(t, srv, http.MethodGet, "/debug/conc/snapshot.json?pipeline=%3Cscript%3Ealert(2)%3C%2Fscript%3E")
	assert.Contains(t, body, `"name":"second"`)
	_, body = get(t, srv, http.MethodGet, "/debug/conc/snapshot.txt")
	assert.Contains(t, body, hostile+" · second", "the text view is plain text")

	for path, msg := range map[string]string{
		"/debug/conc/snapshot.json?pretty=maybe":                         `viz: pretty must be true or false, got "maybe"`,
		"/debug/conc/snapshot.json?color=red":                            `viz: unknown query parameter "color"`,
		"/debug/conc/snapshot.json?pipeline=a&pipeline=b":                `viz: query parameter "pipeline" given 2 times; give it once`,
		"/debug/conc/snapshot.json?pipeline=%ff":                         "viz: pipeline must be valid UTF-8 of at most 256 bytes",
		"/debug/conc/snapshot.json?pipeline=" + strings.Repeat("a", 257): "viz: pipeline must be valid UTF-8 of at most 256 bytes",
		"/debug/conc/snapshot.json?%zz":                                  "viz: bad query string",
		"/debug/conc/?pretty=true":                                       `viz: unknown query parameter "pretty"`,
	} {
		resp, body := get(t, srv, http.MethodGet, path)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, path)
		assert.Contains(t, body, msg, path)
	}
	resp, body = get(t, srv, http.MethodPost, "/debug/conc/snapshot.json")
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Equal(t, "GET, HEAD", resp.Header.Get("Allow"))
	assert.Contains(t, body, "viz: method POST not allowed")
	resp, _ = get(t, srv, http.MethodGet, "/debug/conc/nothing")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestHandlerPanicsOnNil(t *testing.T) {
	assert.PanicsWithValue(t, "viz: Handler needs a Monitor, got nil", func() { Handler(nil) })
}
