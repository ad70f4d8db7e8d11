package conc

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// The naive limiters that BenchmarkLimiter and BenchmarkKeyedLimiter compare
// Limiter and KeyedLimiter with, written the way tutorials write them.

// naiveMutexLimiter is the textbook token bucket: a mutex around a token
// count that is refilled from the elapsed time on every call.
type naiveMutexLimiter struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

func newNaiveMutexLimiter(perSecond float64, burst int) *naiveMutexLimiter {
	return &naiveMutexLimiter{rate: perSecond, burst: float64(burst), tokens: float64(burst), last: time.Now()}
}

func (l *naiveMutexLimiter) Allow() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	l.tokens += now.Sub(l.last).Seconds() * l.rate
	if l.tokens > l.burst {
		l.tokens = l.burst
	}
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

// naiveChanLimiter is the channel version: a goroutine with a ticker drops
// tokens into a buffered channel, and Allow takes one if there is one. A
// ticker cannot usefully tick faster than about a millisecond, so each tick
// adds the tokens of one period.
type naiveChanLimiter struct {
	tokens chan struct{}
	done   chan struct{}
	wg     sync.WaitGroup
}

func newNaiveChanLimiter(perSecond float64, burst int) *naiveChanLimiter {
	l := &naiveChanLimiter{tokens: make(chan struct{}, burst), done: make(chan struct{})}
	for range burst {
		l.tokens <- struct{}{}
	}
	period := time.Duration(float64(time.Second) / perSecond)
	perTick := 1
	if period < time.Millisecond {
		perTick = int(perSecond / 1000)
		period = time.Millisecond
	}
	l.wg.Go(func() {
		ticker := time.NewTicker(period)
		defer ticker.Stop()
		for {
			select {
			case <-ticker.C:
			fill:
				for range perTick {
					select {
					case l.tokens <- struct{}{}:
					default:
						break fill // full
					}
				}
			case <-l.done:
				return
			}
		}
	})
	return l
}

func (l *naiveChanLimiter) Allow() bool {
	select {
	case <-l.tokens:
		return true
	default:
		return false
	}
}

func (l *naiveChanLimiter) Stop() {
	close(l.done)
	l.wg.Wait()
}

// naiveKeyedLimiter is the per-client limiter of every tutorial: a map from
// key to *rate.Limiter under one mutex. It never forgets a key.
type naiveKeyedLimiter struct {
	mu       sync.Mutex
	limiters map[string]*rate.Limiter
	rate     rate.Limit
	burst    int
}

func newNaiveKeyedLimiter(perSecond float64, burst int) *naiveKeyedLimiter {
	return &naiveKeyedLimiter{limiters: make(map[string]*rate.Limiter), rate: rate.Limit(perSecond), burst: burst}
}

func (k *naiveKeyedLimiter) Allow(key string) bool {
	k.mu.Lock()
	lim, ok := k.limiters[key]
	if !ok {
		lim = rate.NewLimiter(k.rate, k.burst)
		k.limiters[key] = lim
	}
	k.mu.Unlock()
	return lim.Allow()
}

// naiveChanKeyedLimiter is the "share memory by communicating" version of
// naiveKeyedLimiter: one goroutine owns the map, and Allow sends it the key
// with a reply channel on an unbuffered channel, then waits for the answer.
type naiveChanKeyedLimiter struct {
	reqs chan keyedReq
	done chan struct{}
	wg   sync.WaitGroup
}

type keyedReq struct {
	key   string
	reply chan bool
}

func newNaiveChanKeyedLimiter(perSecond float64, burst int) *naiveChanKeyedLimiter {
	k := &naiveChanKeyedLimiter{reqs: make(chan keyedReq), done: make(chan struct{})}
	k.wg.Go(func() {
		limiters := make(map[string]*rate.Limiter)
		for {
			select {
			case r := <-k.reqs:
				lim, ok := limiters[r.key]
				if !ok {
					lim = rate.NewLimiter(rate.Limit(perSecond), burst)
					limiters[r.key] = lim
				}
				r.reply <- lim.Allow()
			case <-k.done:
				return
			}
		}
	})
	return k
}

func (k *naiveChanKeyedLimiter) Allow(key string) bool {
	reply := make(chan bool)
	k.reqs <- keyedReq{key, reply}
	return <-reply
}

func (k *naiveChanKeyedLimiter) Stop() {
	close(k.done)
	k.wg.Wait()
}

// Wait is the textbook blocking take: the token is taken under the mutex
// even if the bucket goes into debt, and the caller sleeps off the debt
// (or gives up when ctx is done, without giving the token back).
func (l *naiveMutexLimiter) Wait(ctx context.Context) error {
	l.mu.Lock()
	now := time.Now()
	l.tokens += now.Sub(l.last).Seconds() * l.rate
	if l.tokens > l.burst {
		l.tokens = l.burst
	}
	l.last = now
	l.tokens--
	var wait time.Duration
	if l.tokens < 0 {
		wait = time.Duration(-l.tokens / l.rate * float64(time.Second))
	}
	l.mu.Unlock()
	if wait == 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Wait takes a token from the channel, waiting for the ticker to drop one.
func (l *naiveChanLimiter) Wait(ctx context.Context) error {
	select {
	case <-l.tokens:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
