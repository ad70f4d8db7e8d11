package redislimit

import (
	"github.com/concpatterns/conc/redislimit/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// A mode is how a test's limiter reaches Redis: a round trip per call, a
// batch as one many-key script (a *redis.Client), or a batch as a pipeline
// (any other client, as with a cluster).
type mode struct {
	name            string
	batch, pipeline bool
}

var modes = []mode{{"one-call", false, false}, {"batch-script", true, false}, {"batch-pipeline", true, true}}

// otherClient hides the *redis.Client type, as a cluster or ring client
// would, so that batches go out as pipelines.
type otherClient struct{ *redis.Client }

func (m mode) client(srv *redistest.Server) redis.UniversalClient {
	if m.pipeline {
		return otherClient{srv.Client()}
	}
	return srv.Client()
}

func (m mode) opts(opts ...Option) []Option {
	if m.batch {
		opts = append(opts, Batching(2))
	}
	return opts
}
