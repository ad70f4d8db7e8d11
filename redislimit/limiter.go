// Package redislimit is a keyed rate limiter whose buckets live in Redis, so
// that every replica of a service shares one budget per key. It has the
// semantics of conc.KeyedLimiter (GCRA: perSecond events a second on
// average, bursts of up to burst, per key) and adds what a network call
// needs: a local cache of throttled keys, a failure policy with a circuit
// breaker, optional batching of concurrent decisions into one round trip,
// and counters that say which path decided each call.
package redislimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/concpatterns/conc"
	"github.com/redis/go-redis/v9"
)

// A Path names what decided a call.
type Path uint8

const (
	PathRedis    Path = iota + 1 // the script in Redis
	PathCache                    // the local deny cache: the key is known to be throttled
	PathFallback                 // the in-process fallback limiter (Redis failed)
	PathOpen                     // the fail-open policy admitted the call (Redis failed)
	PathClosed                   // the fail-closed policy refused the call (Redis failed)
)

func (p Path) String() string {
	switch p {
	case PathRedis:
		return "redis"
	case PathCache:
		return "cache"
	case PathFallback:
		return "fallback"
	case PathOpen:
		return "fail-open"
	case PathClosed:
		return "fail-closed"
	}
	return "Path(" + strconv.Itoa(int(p)) + ")"
}

// A Decision is the answer to one call, with what an HTTP response needs.
type Decision struct {
	Allowed bool
	// Remaining is how many tokens the key has left after this call.
	Remaining int
	// RetryAfter is how long until the same call could be admitted: 0 when
	// Allowed, -1 when it never can be (n above the burst).
	RetryAfter time.Duration
	// ResetAfter is how long until the key's bucket is full again.
	ResetAfter time.Duration
	// Path is what decided.
	Path Path
}

// A DecisionError is returned with a Decision that a failure policy made
// because Redis could not: Err is Redis's error, conc.ErrOpen while the
// breaker is open, or the timeout. The Decision is valid and the caller
// should act on it; the error is there so that nothing fails silently.
type DecisionError struct {
	Path Path
	Err  error
}

func (e *DecisionError) Error() string {
	return "redislimit: redis unavailable, decided by " + e.Path.String() + ": " + e.Err.Error()
}

func (e *DecisionError) Unwrap() error { return e.Err }

// A Policy says what a call gets when Redis fails or the breaker is open:
// FailOpen, FailClosed or Fallback.
type Policy struct {
	path  Path
	share float64
}

var (
	// FailOpen admits every call while Redis is unavailable.
	FailOpen = Policy{path: PathOpen}
	// FailClosed refuses every call while Redis is unavailable, with a
	// RetryAfter of one breaker cooldown at most (the default policy: it
	// never admits more than the budget).
	FailClosed = Policy{path: PathClosed}
)

// Fallback decides with an in-process conc.KeyedLimiter while Redis is
// unavailable, at share of the rate and burst (burst at least 1): with N
// replicas, a share of 1/N keeps the whole fleet near the budget. It panics
// with a conc: message unless 0 < share <= 1.
func Fallback(share float64) Policy {
	if !(share > 0 && share <= 1) {
		panic(fmt.Sprintf("conc: redislimit Fallback share must be in (0, 1], got %v", share))
	}
	return Policy{path: PathFallback, share: share}
}

// An Option configures a Limiter.
type Option func(*options)

type options struct {
	policy    Policy
	timeout   time.Duration
	denyKeys  int
	inFlight  int
	breaker   []conc.BreakerOption
	retryDown time.Duration
}

// OnFailure sets the failure policy (default FailClosed).
func OnFailure(p Policy) Option {
	if p.path == 0 {
		panic("conc: redislimit OnFailure needs FailOpen, FailClosed or Fallback(share)")
	}
	return func(o *options) { o.policy = p }
}

// Timeout bounds each round trip to Redis; a call that takes longer counts
// as a failure. By default (0) the client's own read and write timeouts
// bound it, and a call costs no timer of its own.
func Timeout(d time.Duration) Option {
	if d < 0 {
		panic(fmt.Sprintf("conc: redislimit Timeout must not be negative, got %v", d))
	}
	return func(o *options) { o.timeout = d }
}

// DenyCache sets how many throttled keys the local deny cache remembers
// (default 65536); 0 turns it off.
func DenyCache(keys int) Option {
	if keys < 0 {
		panic(fmt.Sprintf("conc: redislimit DenyCache must not be negative, got %d", keys))
	}
	return func(o *options) { o.denyKeys = keys }
}

// Batching makes concurrent calls share round trips: a call that finds
// fewer than inFlight batches on the wire sends every call waiting at that
// moment as one round trip; the others wait for a batch to take them. No
// goroutine is started; a caller carries each batch. It panics unless
// inFlight >= 1. Over a *redis.Client (one node, or a sentinel's master) a
// batch is one script run over all its keys; over any other client (cluster,
// ring) it is a pipeline of one-key scripts, which a cluster client splits by
// node, so every command still has one key.
func Batching(inFlight int) Option {
	if inFlight < 1 {
		panic(fmt.Sprintf("conc: redislimit Batching needs inFlight >= 1, got %d", inFlight))
	}
	return func(o *options) { o.inFlight = inFlight }
}

// BreakerOptions configures the conc.Breaker around the Redis calls
// (default: open after 3 consecutive failures, cooldown 1s).
func BreakerOptions(opts ...conc.BreakerOption) Option {
	return func(o *options) { o.breaker = append(o.breaker, opts...) }
}

// A Limiter keeps one GCRA bucket per key in Redis, under prefix+key, one
// key per command (so it works with Redis Cluster). The zero value is not
// usable; make one with New. A Limiter is safe for concurrent use; it starts
// no goroutine, so Close only makes later calls fail with conc.ErrClosed.
//
// Every call is decided by exactly one Path, counted in Stats:
//
//   - PathCache: the key was refused by Redis until some time T that has
//     not come yet, so it is refused without a round trip. No other
//     replica's traffic can make the key admissible earlier, so the cache
//     never admits and never refuses what Redis would have decided
//     otherwise (except that a refusal is not revisited before T).
//   - PathRedis: the script decided.
//   - PathFallback, PathOpen, PathClosed: Redis failed (an error, a
//     timeout, or the breaker is open) and the failure policy decided. The
//     error returned is then a *DecisionError that names the path and wraps
//     the cause; the Decision is valid.
type Limiter struct {
	client    redis.UniversalClient
	prefix    string
	rate      float64
	burst     int
	ivArg     any           // the emission interval in µs, as the script's argument
	burstArg  any           // the burst, boxed once rather than on every call
	iv        time.Duration // the emission interval, rounded
	timeout   time.Duration
	policy    Policy
	retryDown time.Duration
	deny      *denyCache
	fallback  *conc.KeyedLimiter[string]
	breaker   *conc.Breaker
	batch     *batcher
	closed    atomic.Bool

	st [statCount]paddedCounter
}

// New returns a Limiter over client that gives every key perSecond events a
// second and bursts of up to burst, keeping its buckets under prefix. It
// panics with a conc: message on a nil client, a rate that is not a positive
// finite number, or a burst below 1.
func New(client redis.UniversalClient, prefix string, perSecond float64, burst int, opts ...Option) *Limiter {
	if client == nil {
		panic("conc: redislimit client must not be nil")
	}
	if !(perSecond > 0) || math.IsInf(perSecond, 1) {
		panic(fmt.Sprintf("conc: redislimit rate must be positive and finite, got %v", perSecond))
	}
	if burst < 1 {
		panic(fmt.Sprintf("conc: redislimit burst must be at least 1, got %d", burst))
	}
	o := options{policy: FailClosed, denyKeys: 1 << 16, retryDown: time.Second}
	for _, opt := range opts {
		if opt == nil {
			panic("conc: redislimit option must not be nil")
		}
		opt(&o)
	}
	ivUS := 1e6 / perSecond
	l := &Limiter{
		client:    client,
		prefix:    prefix,
		rate:      perSecond,
		burst:     burst,
		ivArg:     strconv.FormatFloat(ivUS, 'g', -1, 64),
		burstArg:  burst,
		iv:        time.Duration(math.Ceil(ivUS * 1e3)),
		timeout:   o.timeout,
		policy:    o.policy,
		retryDown: o.retryDown,
		breaker:   conc.NewBreaker(append([]conc.BreakerOption{conc.ConsecutiveFailures(3), conc.Cooldown(time.Second)}, o.breaker...)...),
	}
	if o.denyKeys > 0 {
		l.deny = newDenyCache(o.denyKeys)
	}
	if o.policy.path == PathFallback {
		l.fallback = conc.NewKeyedLimiter[string](perSecond*o.policy.share, max(1, int(float64(burst)*o.policy.share)))
	}
	if o.inFlight > 0 {
		l.batch = &batcher{l: l, max: o.inFlight}
	}
	return l
}

// Limit returns the rate in events per second; Burst the burst.
func (l *Limiter) Limit() float64 { return l.rate }

// Burst returns the largest number of events a key may have at once.
func (l *Limiter) Burst() int { return l.burst }

// Allow is AllowN(ctx, key, 1).
func (l *Limiter) Allow(ctx context.Context, key string) (Decision, error) {
	return l.AllowN(ctx, key, 1)
}

// AllowN decides whether n events may happen now for key, and takes n of its
// tokens if so. It blocks for at most one round trip to Redis (none when the
// deny cache or the breaker decides). It returns:
//
//   - a Decision and nil when Redis or the deny cache decided;
//   - a Decision and a *DecisionError when the failure policy decided;
//   - a refusal with ctx's error when ctx is done before the decision,
//     and conc.ErrClosed after Close.
//
// n above the burst is refused at once with RetryAfter -1; n <= 0 is
// admitted without a round trip.
func (l *Limiter) AllowN(ctx context.Context, key string, n int) (Decision, error) {
	if ctx == nil {
		panic("conc: context must not be nil")
	}
	if l.closed.Load() {
		return Decision{}, conc.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return Decision{}, context.Cause(ctx)
	}
	if n <= 0 {
		return Decision{Allowed: true, Remaining: l.burst, Path: PathRedis}, nil
	}
	if n > l.burst {
		l.count(PathRedis)
		return Decision{RetryAfter: -1, Path: PathRedis}, nil
	}
	start := time.Now()
	if l.deny != nil {
		if d, ok := l.deny.check(key, n, start, l.iv); ok {
			l.count(PathCache)
			return d, nil
		}
	}
	var r reply
	var err error
	if l.batch != nil {
		r, err = l.batch.do(ctx, key, n)
	} else {
		r, err = l.eval(ctx, key, n)
	}
	if err != nil {
		if ctx.Err() != nil {
			return Decision{}, context.Cause(ctx)
		}
		return l.onFailure(key, n, err)
	}
	d := r.decision()
	l.count(PathRedis)
	if !d.Allowed && l.deny != nil {
		l.deny.note(key, start, r, l.ivUS(), l.burst)
	}
	return d, nil
}

// onFailure applies the failure policy after Redis failed with err.
func (l *Limiter) onFailure(key string, n int, err error) (Decision, error) {
	l.count(statErrors)
	var d Decision
	switch l.policy.path {
	case PathOpen:
		d = Decision{Allowed: true, Remaining: l.burst - n}
	case PathClosed:
		d = Decision{RetryAfter: l.retryDown, ResetAfter: l.retryDown}
	case PathFallback:
		d.Allowed = l.fallback.AllowN(key, n)
		tok, rate, burst := l.fallback.TokensFor(key)
		d.Remaining = max(0, int(tok))
		if rate > 0 {
			d.ResetAfter = secs((float64(burst) - tok) / rate)
			if !d.Allowed {
				d.RetryAfter = secs((float64(n) - tok) / rate)
			}
		}
	}
	d.Path = l.policy.path
	l.count(d.Path)
	return d, &DecisionError{Path: d.Path, Err: err}
}

func secs(s float64) time.Duration { return time.Duration(math.Ceil(max(0, s) * 1e9)) }

func (l *Limiter) ivUS() float64 { return 1e6 / l.rate }

// eval runs the script for one key through the breaker: EVALSHA, and EVAL
// when Redis does not know the script (which also loads it again).
func (l *Limiter) eval(ctx context.Context, key string, n int) (reply, error) {
	done, err := l.breaker.Allow()
	if err != nil {
		return reply{}, err
	}
	if l.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.timeout)
		defer cancel()
	}
	keys := []string{l.prefix + key}
	v, err := l.client.EvalSha(ctx, gcraSHA, keys, l.ivArg, l.burstArg, n).Int64Slice()
	if isNoScript(err) {
		l.count(statLoads)
		v, err = l.client.Eval(ctx, gcraScript, keys, l.ivArg, l.burstArg, n).Int64Slice()
	}
	var r reply
	if err == nil {
		r, err = parseReply(v)
	}
	done(err)
	return r, err
}

// reply is the script's answer.
type reply struct {
	allowed          bool
	remaining        int64
	retryUS, resetUS int64
}

func parseReply(v []int64) (reply, error) {
	if len(v) != 4 {
		return reply{}, fmt.Errorf("redislimit: unexpected script reply %v", v)
	}
	return reply{allowed: v[0] == 1, remaining: v[1], retryUS: v[2], resetUS: v[3]}, nil
}

func (r reply) decision() Decision {
	return Decision{
		Allowed:    r.allowed,
		Remaining:  int(max(0, r.remaining)),
		RetryAfter: time.Duration(r.retryUS) * time.Microsecond,
		ResetAfter: time.Duration(r.resetUS) * time.Microsecond,
		Path:       PathRedis,
	}
}

// Wait is WaitN(ctx, key, 1).
func (l *Limiter) Wait(ctx context.Context, key string) error {
	return l.WaitN(ctx, key, 1)
}

// WaitN blocks until n events may happen for key and takes its tokens. It
// asks again after each RetryAfter (one timer for the whole wait), so it
// admits nothing that AllowN would not; waiters are not queued, so under
// contention one may be overtaken. It returns nil once admitted (also by
// the failure policy: the cause is then dropped, as Stats counts it); an
// error for n above the burst; ctx's error, without waiting, when the next
// chance comes after ctx's deadline or when ctx is done during the wait;
// conc.ErrClosed after Close.
func (l *Limiter) WaitN(ctx context.Context, key string, n int) error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		d, err := l.AllowN(ctx, key, n)
		if d.Allowed {
			return nil
		}
		var de *DecisionError
		if err != nil && !errors.As(err, &de) {
			return err
		}
		if d.RetryAfter < 0 {
			return fmt.Errorf("redislimit: WaitN(n=%d) exceeds the burst %d", n, l.burst)
		}
		wait := max(d.RetryAfter, time.Millisecond)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return fmt.Errorf("redislimit: tokens would come after the deadline: %w", context.DeadlineExceeded)
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-timer.C:
		}
	}
}

// Close makes later calls return conc.ErrClosed. It is idempotent and does
// not close the client, which belongs to the caller.
func (l *Limiter) Close() error {
	l.closed.Store(true)
	return nil
}

// Stats is a snapshot of a Limiter's counters. Each call for n >= 1 that
// returned a Decision is counted once under the path that decided it (n
// above the burst under Redis), so Redis + Cache + Fallback + Open + Closed
// is the number of decisions. Calls that ended with ctx's error or
// conc.ErrClosed are not decisions and are not counted.
type Stats struct {
	Redis, Cache, Fallback, Open, Closed uint64
	// Errors counts the Redis failures that sent a call to the policy
	// (conc.ErrOpen from the breaker included).
	Errors uint64
	// ScriptLoads counts the times Redis did not know the script (NOSCRIPT)
	// and it was sent again.
	ScriptLoads uint64
	// Batches counts the pipelines sent with Batching, Batched the calls
	// they carried.
	Batches, Batched uint64
	// CachedKeys is the number of keys in the deny cache now.
	CachedKeys int
	// Breaker is the state of the breaker around Redis.
	Breaker conc.BreakerState
}

// Stats returns a snapshot of the counters.
func (l *Limiter) Stats() Stats {
	s := Stats{
		Redis:       l.st[PathRedis].Load(),
		Cache:       l.st[PathCache].Load(),
		Fallback:    l.st[PathFallback].Load(),
		Open:        l.st[PathOpen].Load(),
		Closed:      l.st[PathClosed].Load(),
		Errors:      l.st[statErrors].Load(),
		ScriptLoads: l.st[statLoads].Load(),
		Batches:     l.st[statBatches].Load(),
		Batched:     l.st[statBatched].Load(),
		Breaker:     l.breaker.State(),
	}
	if l.deny != nil {
		s.CachedKeys = l.deny.len()
	}
	return s
}

// Counters beyond the paths, indexes into Limiter.st.
const (
	statErrors = Path(iota + PathClosed + 1)
	statLoads
	statBatches
	statBatched
	statCount
)

// paddedCounter keeps each counter on its own cache line: every call bumps
// one, from every core.
type paddedCounter struct {
	atomic.Uint64
	_ [56]byte
}

func (l *Limiter) count(p Path) { l.st[p].Add(1) }
