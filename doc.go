// Package conc provides generic, context-aware concurrency primitives that
// compose into typed pipelines: pipeline stages, fan-in and fan-out, a worker
// pool and bounded parallelism, retry with backoff, a circuit breaker, token
// bucket and per-key rate limiters, or-channels, graceful shutdown, deadlock
// prevention helpers and an in-process pub/sub broker.
//
// Every primitive keeps the same contracts:
//
//   - Anything that may block takes a context.Context first and returns
//     promptly when it is done, with an error that errors.Is matches against
//     ctx.Err().
//   - A panic in user code becomes a *PanicError delivered where that call's
//     error would go; it never crashes the process.
//   - No goroutine of the package outlives its owner: once a primitive is
//     closed, its context cancelled or its output fully consumed, nothing of
//     it keeps running.
//   - Nothing is lost silently: every accepted item is delivered, returned
//     as an error, or counted as dropped in Stats.
//   - Close is idempotent; use after Close returns ErrClosed.
//   - Programmer errors (a worker count below one, a nil function, a negative
//     rate) panic at construction with a message that starts "conc: ".
//   - Time is read only through the time package, so testing/synctest makes
//     tests of time-dependent code deterministic.
package conc
