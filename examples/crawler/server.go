package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/concpatterns/conc"
)

// The test server plays the parts of the web a crawler meets: hosts (the
// first path segment stands for a host name) that are slow on some pages,
// fail some requests once and then recover, one host that is down for good,
// and a per-host request budget enforced with 429 Too Many Requests.
type server struct {
	*httptest.Server
	limit *conc.KeyedLimiter[string]

	mu       sync.Mutex
	attempts map[string]int // per path, to fail a first attempt only

	slow time.Duration
}

// Host names of the test server; downHost answers 500 to everything.
const downHost = "down"

func hostName(i int) string { return "h" + strconv.Itoa(i) }

// newServer starts the server. perHost is the rate it grants each host; a
// crawler that asks faster gets 429s carrying a Retry-After hint.
func newServer(perHost float64, slow time.Duration) *server {
	s := &server{
		limit:    conc.NewKeyedLimiter[string](perHost, max(1, int(perHost/20))),
		attempts: map[string]int{},
		slow:     slow,
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

func (s *server) serve(w http.ResponseWriter, r *http.Request) {
	host, page, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	n, err := strconv.Atoi(page)
	if !ok || err != nil {
		http.NotFound(w, r)
		return
	}
	if host == downHost {
		http.Error(w, "host is down", http.StatusInternalServerError)
		return
	}
	if !s.limit.Allow(host) {
		// The hint is in milliseconds so the demo stays quick; real servers
		// send whole seconds in Retry-After.
		w.Header().Set("Retry-After-Ms", "20")
		http.Error(w, "slow down", http.StatusTooManyRequests)
		return
	}
	s.mu.Lock()
	s.attempts[r.URL.Path]++
	attempt := s.attempts[r.URL.Path]
	s.mu.Unlock()
	switch {
	case n%11 == 3 && attempt == 1:
		// A transient failure: the next attempt succeeds.
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	case n%50 == 7:
		// A slow page; the client's per-request timeout is longer.
		select {
		case <-time.After(s.slow):
		case <-r.Context().Done():
			return
		}
	}
	fmt.Fprintf(w, "page %d of %s\n", n, host)
}
