// Package viz serves a live view of a conc.Monitor in the browser: each
// monitored pipeline as a graph, left to right, with its stages' workers,
// throughput, errors, buffer fill, backpressure and bottleneck, and panels
// for the pools, breakers, limiters, brokers and fan-ins the monitor
// watches. It uses the standard library only; the page (HTML, CSS and
// JavaScript) is embedded in the binary and loads nothing from elsewhere.
//
// Mount it the way net/http/pprof is mounted, on an address only operators
// can reach:
//
//	m := conc.NewMonitor()
//	mux := http.NewServeMux()
//	mux.Handle("/debug/conc/", http.StripPrefix("/debug/conc", viz.Handler(m)))
//	go http.ListenAndServe("127.0.0.1:6061", mux)
//
// The page polls snapshot.json beside it twice a second; scripts can read
// that too (its fields are described in README.md in this directory).
package viz

import (
	"embed"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/concpatterns/conc"
)

//go:embed page
var page embed.FS

// csp allows the page nothing but its own files and its own JSON: no inline
// script, no other origin, no framing. Even a name that got past the page's
// escaping could not run or load anything.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// maxName bounds the pipeline name a query may ask for.
const maxName = 256

// Handler returns an http.Handler that serves the view of m. Under the path
// it is mounted at (ending in a slash) it serves:
//
//   - "" (the directory itself): the page;
//   - app.js and style.css: the page's script and style;
//   - snapshot.json: m.Snapshot() as JSON. ?pipeline=NAME keeps only the
//     pipelines of that name; ?pretty=true indents the output.
//   - snapshot.txt: the same as the text table of Monitor.WriteText.
//
// The page takes ?pipeline=NAME too and passes it on. Any other query
// parameter, a repeated one, or a value that is not valid gets 400 with a
// message; a method other than GET or HEAD gets 405; another path 404.
// Handler panics if m is nil.
func Handler(m *conc.Monitor) http.Handler {
	if m == nil {
		panic("viz: Handler needs a Monitor, got nil")
	}
	return &handler{m: m}
}

type handler struct {
	m *conc.Monitor
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "viz: method "+r.Method+" not allowed; use GET", http.StatusMethodNotAllowed)
		return
	}
	file := r.URL.Path
	if i := strings.LastIndexByte(file, '/'); i >= 0 {
		file = file[i+1:]
	}
	switch file {
	case "", "index.html":
		if _, err := query(r.URL, false); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		serveFile(w, r, "page/index.html", "text/html; charset=utf-8")
	case "app.js":
		serveFile(w, r, "page/app.js", "text/javascript; charset=utf-8")
	case "style.css":
		serveFile(w, r, "page/style.css", "text/css; charset=utf-8")
	case "snapshot.json", "snapshot.txt":
		q, err := query(r.URL, file == "snapshot.json")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s := h.m.Snapshot()
		if q.pipeline != nil {
			keep := s.Pipelines[:0]
			for _, p := range s.Pipelines {
				if p.Name == *q.pipeline {
					keep = append(keep, p)
				}
			}
			s.Pipelines = keep
		}
		if file == "snapshot.txt" {
			hd.Set("Content-Type", "text/plain; charset=utf-8")
			_ = s.WriteText(w)
			return
		}
		hd.Set("Content-Type", "application/json")
		enc := json.NewEncoder(w) // escapes <, > and & as \u003c and so on
		if q.pretty {
			enc.SetIndent("", "  ")
		}
		_ = enc.Encode(s)
	default:
		http.NotFound(w, r)
	}
}

// params is a validated query.
type params struct {
	pipeline *string
	pretty   bool
}

// query checks the query string: only pipeline (and pretty, where allowed),
// each at most once, with valid values.
func query(u *url.URL, prettyOK bool) (params, error) {
	var p params
	vals, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return p, fmt.Errorf("viz: bad query string: %v", err)
	}
	for k, v := range vals {
		if len(v) != 1 {
			return p, fmt.Errorf("viz: query parameter %q given %d times; give it once", k, len(v))
		}
		switch {
		case k == "pipeline":
			if len(v[0]) > maxName || !utf8.ValidString(v[0]) {
				return p, fmt.Errorf("viz: pipeline must be valid UTF-8 of at most %d bytes", maxName)
			}
			p.pipeline = &v[0]
		case k == "pretty" && prettyOK:
			b, err := strconv.ParseBool(v[0])
			if err != nil {
				return p, fmt.Errorf("viz: pretty must be true or false, got %q", v[0])
			}
			p.pretty = b
		default:
			return p, fmt.Errorf("viz: unknown query parameter %q", k)
		}
	}
	return p, nil
}

func serveFile(w http.ResponseWriter, r *http.Request, name, ctype string) {
	b, err := page.ReadFile(name)
	if err != nil {
		http.Error(w, "viz: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}
