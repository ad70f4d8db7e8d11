// Package httplimit is net/http middleware that rate-limits requests per key
// (a client address, an API key) over any limiter that can answer the
// Limiter interface: an in-process conc.KeyedLimiter through Keyed, or the
// Redis-backed limiter of the redislimit module, which implements it.
//
// Every response carries the rate-limit header fields of
// draft-ietf-httpapi-ratelimit-headers-10 (RateLimit-Policy and RateLimit,
// structured fields); a refused request gets 429 Too Many Requests with
// Retry-After in whole seconds, rounded up.
package httplimit

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/concpatterns/conc"
)

// A Decision is a limiter's answer for one request.
type Decision struct {
	Allowed bool
	// Limit is the quota of the policy: the requests a full bucket holds
	// (the burst); Window is how long an empty bucket takes to fill.
	Limit  int
	Window time.Duration
	// Remaining is how many requests the key may still make at once.
	Remaining int
	// RetryAfter is how long until a refused request could pass (negative:
	// never); ResetAfter is how long until the bucket is full again.
	RetryAfter time.Duration
	ResetAfter time.Duration
}

// A Limiter decides one request for key. A Limiter that fails returns an
// error together with the Decision its failure policy made (redislimit's
// fail-open, fail-closed or fallback); the middleware acts on that Decision
// and reports the error to OnError. A limiter without a policy returns the
// zero Decision, which refuses the request: an error never lets a request
// through that a policy did not admit.
type Limiter interface {
	Decide(ctx context.Context, key string) (Decision, error)
}

// Keyed adapts an in-process conc.KeyedLimiter to Limiter. The token count
// behind Remaining and the times is read right after the decision, so under
// concurrent requests of one key it can be off by the requests in between.
func Keyed(k *conc.KeyedLimiter[string]) Limiter {
	if k == nil {
		panic("conc: httplimit.Keyed limiter must not be nil")
	}
	return keyed{k}
}

type keyed struct{ k *conc.KeyedLimiter[string] }

func (a keyed) Decide(_ context.Context, key string) (Decision, error) {
	ok := a.k.Allow(key)
	tok, rate, burst := a.k.TokensFor(key)
	d := Decision{Allowed: ok, Limit: burst, Remaining: max(0, int(math.Floor(tok)))}
	switch {
	case rate >= conc.Inf:
	case rate <= 0:
		// A zero rate never refills.
		d.RetryAfter, d.ResetAfter = -1, -1
		if ok {
			d.RetryAfter = 0
		}
	default:
		d.Window = seconds(float64(burst) / rate)
		d.ResetAfter = seconds((float64(burst) - tok) / rate)
		if !ok {
			d.RetryAfter = seconds((1 - tok) / rate)
		}
	}
	return d, nil
}

func seconds(s float64) time.Duration {
	return time.Duration(math.Ceil(max(0, s) * 1e9))
}

// An Option configures a Middleware.
type Option func(*Middleware)

// Key sets the function that names a request's key (default RemoteIP). It
// runs on untrusted input: see KeyFunc.
func Key(fn KeyFunc) Option {
	if fn == nil {
		panic("conc: httplimit.Key function must not be nil")
	}
	return func(m *Middleware) { m.key = fn }
}

// PolicyName sets the policy's name in the header fields (default "default").
// It panics unless name is a token of lower-case letters, digits, '-' and '_'.
func PolicyName(name string) Option {
	if name == "" {
		panic("conc: httplimit.PolicyName must not be empty")
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			panic(fmt.Sprintf("conc: httplimit.PolicyName %q has a character outside [a-z0-9_-]", name))
		}
	}
	return func(m *Middleware) { m.policy = strconv.Quote(name) }
}

// OnError sets a function told of every limiter error, with the request
// (default: none; Stats counts the errors either way). It must not write to
// the response.
func OnError(fn func(r *http.Request, err error)) Option {
	return func(m *Middleware) { m.onError = fn }
}

// Refused sets the handler that writes a refused request's response after
// the headers are set (default: the 429 status and a one-line text body).
func Refused(h http.Handler) Option {
	return func(m *Middleware) { m.refused = h }
}

// A Middleware limits the requests to the handlers it wraps. It is safe for
// concurrent use; make one with New.
type Middleware struct {
	lim     Limiter
	key     KeyFunc
	policy  string
	onError func(*http.Request, error)
	refused http.Handler

	allowed, refusedN, errors, missing, oversize atomic.Uint64
}

// New returns a Middleware over lim. It panics with a conc: message on a nil
// limiter or option.
func New(lim Limiter, opts ...Option) *Middleware {
	if lim == nil {
		panic("conc: httplimit limiter must not be nil")
	}
	m := &Middleware{lim: lim, key: RemoteIP, policy: `"default"`}
	for _, o := range opts {
		if o == nil {
			panic("conc: httplimit option must not be nil")
		}
		o(m)
	}
	return m
}

// Wrap returns a handler that asks the limiter about every request, sets the
// header fields and either calls next or refuses the request with 429.
func (m *Middleware) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, kind := m.keyOf(r)
		switch kind {
		case keyMissing:
			m.missing.Add(1)
		case keyOversize:
			m.oversize.Add(1)
		}
		d, err := m.lim.Decide(r.Context(), key)
		if err != nil {
			m.errors.Add(1)
			if m.onError != nil {
				m.onError(r, err)
			}
		}
		m.headers(w.Header(), d)
		if d.Allowed {
			m.allowed.Add(1)
			next.ServeHTTP(w, r)
			return
		}
		m.refusedN.Add(1)
		if d.RetryAfter >= 0 {
			w.Header().Set("Retry-After", strconv.FormatInt(ceilSeconds(max(d.RetryAfter, time.Second)), 10))
		}
		if m.refused != nil {
			m.refused.ServeHTTP(w, r)
			return
		}
		http.Error(w, http.StatusText(http.StatusTooManyRequests), http.StatusTooManyRequests)
	})
}

// headers sets RateLimit-Policy ("name";q=quota;w=window) and RateLimit
// ("name";r=remaining;t=reset), both in whole seconds rounded up, as
// draft-ietf-httpapi-ratelimit-headers-10 defines them. A decision that
// carries no quota (a failure policy's answer, an unlimited key) sets
// neither.
func (m *Middleware) headers(h http.Header, d Decision) {
	if d.Limit <= 0 {
		return
	}
	p := m.policy + ";q=" + strconv.Itoa(d.Limit)
	if d.Window > 0 {
		p += ";w=" + strconv.FormatInt(ceilSeconds(d.Window), 10)
	}
	h.Set("RateLimit-Policy", p)
	rl := m.policy + ";r=" + strconv.Itoa(max(0, d.Remaining))
	if d.ResetAfter >= 0 {
		rl += ";t=" + strconv.FormatInt(ceilSeconds(d.ResetAfter), 10)
	}
	h.Set("RateLimit", rl)
}

// ceilSeconds rounds d up to whole seconds. It divides before it rounds, so
// a Limiter that reports a duration near math.MaxInt64 (a rate of almost
// zero) gets a huge header value, not a negative one from an overflow.
func ceilSeconds(d time.Duration) int64 {
	s := int64(d / time.Second)
	if d%time.Second > 0 {
		s++
	}
	return s
}

// Stats is a snapshot of a Middleware's counters. Allowed + Refused is the
// number of requests; Errors, Missing and Oversize count among them the
// requests whose limiter failed, that had no key and whose key was too long.
type Stats struct {
	Allowed, Refused, Errors, Missing, Oversize uint64
}

// Stats returns a snapshot of the counters.
func (m *Middleware) Stats() Stats {
	return Stats{
		Allowed:  m.allowed.Load(),
		Refused:  m.refusedN.Load(),
		Errors:   m.errors.Load(),
		Missing:  m.missing.Load(),
		Oversize: m.oversize.Load(),
	}
}
