// Package conc provides generic, context-aware concurrency primitives that
// compose into typed pipelines: pipeline stages, fan-in and fan-out, a worker
// pool and bounded parallelism, retry with backoff, a circuit breaker, token
// bucket and per-key rate limiters, or-channels, graceful shutdown, deadlock
// prevention helpers and an in-process pub/sub broker.
//
// # A short tour
//
// A pipeline is a value built from typed stages and run over an iter.Seq or
// a channel. Consecutive single-worker stages run fused on one goroutine;
// Workers(n) spreads a stage over n goroutines, and Ordered keeps the input
// order with bounded memory:
//
//	parse := conc.Map(parseRecord, conc.Workers(4), conc.Ordered())
//	valid := conc.Filter(isValid)
//	records, err := conc.Collect(ctx, conc.Then(parse, valid), lines)
//
// Merge, FanIn, FanOut, Tee and Partition move items between channels.
// Pool runs jobs on fixed workers over a bounded queue; ForEach, MapN and
// their collect-every-error siblings ForEachAll and MapAll bound the
// parallelism of a loop. Retry and RetryPolicy retry with jittered backoff;
// Breaker stops calling a dependency that keeps failing. Limiter is a token
// bucket with the semantics and most of the API of golang.org/x/time/rate
// (Limiter's documentation lists what differs), and KeyedLimiter keeps one
// per client in bounded memory. Or, OrDone and Race combine cancellation
// signals and competing calls; Send, Recv and LockAll avoid the classic
// deadlocks; Shutdown runs a service's shutdown in phases with deadlines;
// Broker is an in-process publish/subscribe hub. A Monitor, attached with
// Monitored and Watch, shows a running program: per-stage counts, busy,
// backpressured and idle time, stalls and the bottleneck; the viz
// sub-package draws it in a browser.
//
// # Contracts
//
// Every primitive keeps the same contracts:
//
//   - Anything that may block takes a context.Context first and returns
//     promptly when it is done, with an error that errors.Is matches against
//     ctx.Err() and that keeps context.Cause.
//   - A panic in user code becomes a *PanicError delivered where that call's
//     error would go; it does not crash the process and cancels sibling work
//     the way an error does. The exceptions are user code that has no error
//     to go to, each stated on its own declaration:
//     a panic in FromSeq's seq crashes the program (it runs on FromSeq's
//     goroutine, and Collect or All report it instead);
//     a panic in a PerKey function reaches the caller of KeyedLimiter.Allow
//     or AllowN, which return a bool (Wait returns it as a *PanicError);
//     a panic in a Locker's Lock reaches LockAll's caller, as a panic;
//     a panic in an OnResult callback is counted in PoolStats.Dropped, one
//     in an OnStateChange callback in BreakerStats.CallbackPanics (joined to
//     the error of a failed call), and one in an IsFailure function called
//     by Allow's done counts that call as a failure.
//   - No goroutine of the package outlives its owner: once a primitive is
//     closed, its context cancelled or its output fully consumed, nothing of
//     it keeps running. Idle primitives hold no goroutine unless their
//     documentation says so (pool workers, an Or that has not fired).
//   - Nothing is lost silently: every accepted item is delivered, returned
//     as an error, or counted as dropped in Stats.
//   - Close is idempotent; use after Close returns ErrClosed.
//   - Programmer errors (a worker count below one, a nil function, a negative
//     rate, a size beyond the limit its option states) panic at construction
//     with a message that starts "conc: ". A nil context panics as soon as
//     it is passed, not only once it is needed. A size that is a limit (a
//     pool's queue, a batch) is not allocated up front.
//   - Time is read only through the time package, so testing/synctest makes
//     tests of time-dependent code deterministic.
//   - Hot paths (breaker, limiter, retry, pool, pipeline transport, publish)
//     do not allocate.
package conc
