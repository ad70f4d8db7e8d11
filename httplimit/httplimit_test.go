package httplimit

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concpatterns/conc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })

func get(h http.Handler, remote string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = remote
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHeadersAnd429OverAKeyedLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 2 a second, burst 4: a full bucket refills in 2s.
		m := New(Keyed(conc.NewKeyedLimiter[string](2, 4)), PolicyName("per-ip"))
		h := m.Wrap(ok)
		for i := range 4 {
			w := get(h, "192.0.2.1:1234")
			require.Equal(t, http.StatusNoContent, w.Code)
			assert.Equal(t, `"per-ip";q=4;w=2`, w.Header().Get("RateLimit-Policy"))
			assert.Equal(t, `"per-ip";r=`+string(rune('3'-i))+`;t=`+[]string{"1", "1", "2", "2"}[i], w.Header().Get("RateLimit"))
			assert.Empty(t, w.Header().Get("Retry-After"))
		}
		w := get(h, "192.0.2.1:1234")
		assert.Equal(t, http.StatusTooManyRequests, w.Code)
		assert.Equal(t, "1", w.Header().Get("Retry-After"), "one token comes in 0.5s, rounded up to a whole second")
		assert.Equal(t, `"per-ip";r=0;t=2`, w.Header().Get("RateLimit"))

		// Another client has its own bucket.
		assert.Equal(t, http.StatusNoContent, get(h, "192.0.2.2:1").Code)

		time.Sleep(500 * time.Millisecond)
		assert.Equal(t, http.StatusNoContent, get(h, "192.0.2.1:999").Code, "a token came back; the port is not the key")
		st := m.Stats()
		assert.Equal(t, Stats{Allowed: 6, Refused: 1}, st)
	})
}

func TestHostileKeysNeitherCrashNorBypass(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := New(Keyed(conc.NewKeyedLimiter[string](1, 2)), Key(Header("X-API-Key")))
		h := m.Wrap(ok)
		// No key: all keyless requests share one bucket.
		codes := []int{get(h, "1.1.1.1:1").Code, get(h, "2.2.2.2:2").Code, get(h, "3.3.3.3:3").Code}
		assert.Equal(t, []int{204, 204, 429}, codes)
		// Huge keys, each different: one shared bucket, not one each.
		huge := strings.Repeat("k", 10000)
		codes = []int{get(h, "1.1.1.1:1", "X-API-Key", huge+"a").Code, get(h, "1.1.1.1:1", "X-API-Key", huge+"b").Code,
			get(h, "1.1.1.1:1", "X-API-Key", huge+"c").Code}
		assert.Equal(t, []int{204, 204, 429}, codes)
		// A key that spells the shared names is an ordinary key.
		assert.Equal(t, 204, get(h, "1.1.1.1:1", "X-API-Key", "missing").Code)
		st := m.Stats()
		assert.Equal(t, uint64(3), st.Missing)
		assert.Equal(t, uint64(3), st.Oversize)

		// A garbage RemoteAddr has no key: the shared bucket again.
		m2 := New(Keyed(conc.NewKeyedLimiter[string](1, 1)))
		h2 := m2.Wrap(ok)
		assert.Equal(t, 204, get(h2, "not an address").Code)
		assert.Equal(t, 429, get(h2, "").Code)
	})
}

func TestRemoteIP(t *testing.T) {
	for remote, want := range map[string]string{
		"192.0.2.7:80":               "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:1":   "2001:db8:1:2::/64",
		"[::ffff:192.0.2.9]:1":       "192.0.2.9",
		"[fe80::1%eth0]:1":           "fe80::/64",
		"192.0.2.8":                  "192.0.2.8",
		"garbage":                    "",
		"":                           "",
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", "6.6.6.6")
		assert.Equal(t, want, RemoteIP(r), remote)
	}
}

func TestForwardedForTakesTheRightmostUntrustedHop(t *testing.T) {
	key := ForwardedFor(netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8"))
	tests := []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"untrusted peer: header ignored", "203.0.113.5:1", []string{"1.2.3.4"}, "203.0.113.5"},
		{"one proxy", "10.0.0.1:1", []string{"198.51.100.7"}, "198.51.100.7"},
		{"forged left entries ignored", "10.0.0.1:1", []string{"1.1.1.1, 2.2.2.2, 198.51.100.7"}, "198.51.100.7"},
		{"chain of trusted proxies", "10.0.0.1:1", []string{"198.51.100.7, 10.1.1.1", "10.2.2.2"}, "198.51.100.7"},
		{"garbage where the client should be", "10.0.0.1:1", []string{"1.1.1.1, nonsense, 10.3.3.3"}, "10.3.3.3"},
		{"no header", "10.0.0.1:1", nil, "10.0.0.1"},
		{"all trusted", "10.0.0.1:1", []string{"10.9.9.9"}, "10.9.9.9"},
		{"ipv6 client", "[fd00::1]:1", []string{"2001:db8::1"}, "2001:db8::/64"},
		{"empty entries", "10.0.0.1:1", []string{", ,"}, "10.0.0.1"},
		{"too many hops", "10.0.0.1:1", []string{"1.1.1.1" + strings.Repeat(", 10.0.0.2", 40)}, "10.0.0.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			assert.Equal(t, tt.want, key(r))
		})
	}
}

// failing is a limiter whose backend is down and whose policy answered.
type failing struct{ d Decision }

var errDown = errors.New("backend down")

func (f failing) Decide(context.Context, string) (Decision, error) { return f.d, errDown }

func TestLimiterErrorsFollowTheLimitersPolicy(t *testing.T) {
	var mu sync.Mutex
	var seen []error
	onErr := OnError(func(_ *http.Request, err error) {
		mu.Lock()
		seen = append(seen, err)
		mu.Unlock()
	})
	open := New(failing{Decision{Allowed: true}}, onErr).Wrap(ok)
	w := get(open, "192.0.2.1:1")
	assert.Equal(t, 204, w.Code, "a fail-open decision lets the request through")
	assert.Empty(t, w.Header().Get("RateLimit"), "no quota to report")

	m := New(failing{}, onErr)
	w = get(m.Wrap(ok), "192.0.2.1:1")
	assert.Equal(t, 429, w.Code, "the zero decision refuses")
	assert.Equal(t, "1", w.Header().Get("Retry-After"))
	assert.Equal(t, Stats{Refused: 1, Errors: 1}, m.Stats())
	assert.Equal(t, []error{errDown, errDown}, seen)

	never := New(failing{Decision{RetryAfter: -1}}, Refused(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))).Wrap(ok)
	w = get(never, "192.0.2.1:1")
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.Empty(t, w.Header().Get("Retry-After"))
}

func TestNewPanicsOnBadInput(t *testing.T) {
	assert.PanicsWithValue(t, "conc: httplimit limiter must not be nil", func() { New(nil) })
	assert.Panics(t, func() { Keyed(nil) })
	assert.Panics(t, func() { Key(nil) })
	assert.Panics(t, func() { PolicyName("Bad Name") })
	assert.Panics(t, func() { New(failing{}, nil) })
}
