package conc

import (
	"fmt"
	"math"
	"time"
)

// A PoolOption configures a Pool at construction. The options are
// QueueSize, ResultBuffer, OnResult and JobTimeout; later options override
// earlier ones.
type PoolOption interface {
	applyPool(*poolConfig)
}

// poolConfig collects the options; -1 means "not set, use the default".
type poolConfig struct {
	queue    int
	results  int
	onResult any // func(Result[J, R]); checked against the pool's types in NewPool
	timeout  time.Duration
}

type poolOptionFunc func(*poolConfig)

func (f poolOptionFunc) applyPool(c *poolConfig) { f(c) }

// QueueSize sets how many accepted jobs may wait for a worker; Submit blocks
// and TrySubmit fails beyond that. The default is 32 per worker. The size
// is a limit, not an allocation: the queue starts with at most 1024 slots
// and grows as jobs wait. QueueSize(0) means no queue at all, a direct
// hand-off: a job is accepted only when a worker is free to take it, so
// Submit blocks until one is and TrySubmit fails while every worker is
// busy. It panics with a conc: message when n is negative or above
// 2^31-1.
func QueueSize(n int) PoolOption {
	checkNonNegative("queue size", n)
	checkAtMost("queue size", n, math.MaxInt32)
	return poolOptionFunc(func(c *poolConfig) { c.queue = n })
}

// ResultBuffer sets the capacity of the Results channel: how many results
// the workers may get ahead of the reader before they wait. The default is
// twice the queue size, counting a queue of 0 as 1 and one above 1024 as
// 1024. Zero makes every result wait for a reader. It panics with a conc:
// message when n is negative or above 2^20 (1048576), and NewPool panics
// when n > 0 comes with OnResult, which has no channel to buffer.
func ResultBuffer(n int) PoolOption {
	checkBuffer("result buffer", n)
	return poolOptionFunc(func(c *poolConfig) { c.results = n })
}

// OnResult makes the pool call fn with every Result, from the worker that
// ran the job, instead of sending it on the Results channel. An undrained
// channel can then never stall the pool; fn itself runs on the worker, so a
// slow fn slows the pool, and it must be safe for concurrent calls when the
// pool has more than one worker. A panic in fn is recovered and counted in
// PoolStats.Dropped. J and R must be the pool's types; NewPool panics
// otherwise, and when ResultBuffer(n > 0) is also given: the Results
// channel then only closes when the pool is done, and never buffers.
func OnResult[J, R any](fn func(Result[J, R])) PoolOption {
	checkFunc("OnResult callback", fn == nil)
	return poolOptionFunc(func(c *poolConfig) { c.onResult = fn })
}

// JobTimeout bounds every job's run: the context passed to the pool's
// function ends d after the job starts (a job already queued for longer is
// not affected until it starts). It costs a context and a timer per job. It
// panics with a conc: message when d is not positive.
func JobTimeout(d time.Duration) PoolOption {
	if d <= 0 {
		panic(fmt.Sprintf("conc: job timeout must be positive, got %v", d))
	}
	return poolOptionFunc(func(c *poolConfig) { c.timeout = d })
}
