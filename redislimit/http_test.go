package redislimit

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/concpatterns/conc/httplimit"
	"github.com/concpatterns/conc/redislimit/internal/redistest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var _ httplimit.Limiter = (*Limiter)(nil)

func TestMiddlewareOverRedis(t *testing.T) {
	srv := redistest.Start(t)
	// 0.5 a second, burst 2: a full bucket refills in 4s.
	l := New(srv.Client(), "http:", 0.5, 2)
	m := httplimit.New(l, httplimit.Key(httplimit.Header("X-API-Key")))
	h := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	get := func(key string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if key != "" {
			r.Header.Set("X-API-Key", key)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	w := get("alice")
	require.Equal(t, http.StatusNoContent, w.Code)
	assert.Equal(t, `"default";q=2;w=4`, w.Header().Get("RateLimit-Policy"))
	assert.Equal(t, `"default";r=1;t=2`, w.Header().Get("RateLimit"))
	w = get("alice")
	require.Equal(t, http.StatusNoContent, w.Code)
	assert.Equal(t, `"default";r=0;t=4`, w.Header().Get("RateLimit"))
	w = get("alice")
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.Equal(t, "2", w.Header().Get("Retry-After"))
	// The deny cache answers the next one with the same headers.
	w = get("alice")
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.Equal(t, "2", w.Header().Get("Retry-After"))
	assert.Equal(t, uint64(1), l.Stats().Cache)

	// Hostile keys: missing and huge share a bucket each.
	assert.Equal(t, []int{204, 204, 429}, []int{get("").Code, get("").Code, get("").Code})
	huge := strings.Repeat("x", 5000)
	assert.Equal(t, []int{204, 204, 429}, []int{get(huge + "1").Code, get(huge + "2").Code, get(huge + "3").Code})
	assert.Equal(t, httplimit.Stats{Allowed: 6, Refused: 4, Missing: 3, Oversize: 3}, m.Stats())

	// Redis gone, fail-closed: 429 with a Retry-After and the error reported.
	var errs int
	closed := httplimit.New(New(srv.Client(), "http2:", 1, 1, OnFailure(FailClosed)),
		httplimit.OnError(func(*http.Request, error) { errs++ })).
		Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Kill()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	w = httptest.NewRecorder()
	closed.ServeHTTP(w, r)
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.Equal(t, "1", w.Header().Get("Retry-After"))
	assert.Empty(t, w.Header().Get("RateLimit"))
	assert.Equal(t, 1, errs)
}
