package redislimit

import (
	"context"
	"math"
	"time"

	"github.com/concpatterns/conc/httplimit"
)

// Decide makes the Limiter an httplimit.Limiter: it is Allow, with the
// quota (the burst) and its window (burst / rate) added. When the failure
// policy decided, the error is the *DecisionError and the Decision the
// policy's; a fail-open or fail-closed decision carries no quota, so the
// middleware sends no RateLimit fields for it.
func (l *Limiter) Decide(ctx context.Context, key string) (httplimit.Decision, error) {
	d, err := l.Allow(ctx, key)
	h := httplimit.Decision{
		Allowed:    d.Allowed,
		Remaining:  d.Remaining,
		RetryAfter: d.RetryAfter,
		ResetAfter: d.ResetAfter,
	}
	if d.Path == PathRedis || d.Path == PathCache || d.Path == PathFallback {
		h.Limit = l.burst
		h.Window = time.Duration(math.Ceil(float64(l.burst) / l.rate * 1e9))
	}
	return h, err
}
