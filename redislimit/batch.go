package redislimit

import (
	"context"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
)

// batcher lets concurrent calls share round trips, with no goroutine of its
// own. A call joins the queue; if fewer than max batches are on the wire, it
// becomes a leader: it takes the whole queue (its own call included), sends
// it as one pipeline and hands each call its reply. When a leader is done
// and calls have queued meanwhile, it passes the lead to the first of them
// instead of sending again itself, so no caller carries others' work for
// longer than one round trip. The batch runs on the Timeout option alone, detached
// from any one caller's context: a caller whose ctx ends while it waits
// returns at once, and its reply is dropped.
type batcher struct {
	l   *Limiter
	max int

	mu       sync.Mutex
	queue    []*batchCall
	inFlight int
}

type batchCall struct {
	key   string
	n     int
	r     reply
	err   error
	batch []*batchCall // set on a call handed the lead: the batch it sends
	done  chan bool    // true: the reply is in; false: the caller leads batch now
}

const batchMax = 256 // calls in one pipeline

func (b *batcher) do(ctx context.Context, key string, n int) (reply, error) {
	c := &batchCall{key: key, n: n, done: make(chan bool, 1)}
	b.mu.Lock()
	b.queue = append(b.queue, c)
	var batch []*batchCall
	if b.inFlight < b.max {
		b.inFlight++
		batch = b.cut()
	}
	b.mu.Unlock()
	if batch != nil {
		b.lead(batch)
	}
	for {
		select {
		case replied := <-c.done:
			if replied {
				return c.r, c.err
			}
			b.lead(c.batch)
		case <-ctx.Done():
			// The call stays queued or in flight; whoever sends it
			// drops its reply. If the lead is handed to it later,
			// nobody would carry it: abandon does.
			go b.abandon(c)
			return reply{}, context.Cause(ctx)
		}
	}
}

// abandon waits for the reply or the lead of a call whose caller has gone,
// and carries a lead so that the calls queued behind it are not stranded.
// It ends with the call's batch.
func (b *batcher) abandon(c *batchCall) {
	for !<-c.done {
		b.lead(c.batch)
	}
}

// cut takes up to batchMax calls off the front of the queue. b.mu is held.
func (b *batcher) cut() []*batchCall {
	k := min(len(b.queue), batchMax)
	batch := make([]*batchCall, k)
	copy(batch, b.queue)
	n := copy(b.queue, b.queue[k:])
	clear(b.queue[n:])
	b.queue = b.queue[:n]
	return batch
}

// lead sends batch, then hands the next batch (cut here, so that no call is
// ever in two) to the first call of it, or gives the in-flight slot back,
// and finally delivers the replies.
func (b *batcher) lead(batch []*batchCall) {
	b.send(batch)
	b.mu.Lock()
	var next []*batchCall
	if len(b.queue) > 0 {
		next = b.cut()
	} else {
		b.inFlight--
	}
	b.mu.Unlock()
	for _, c := range batch {
		c.done <- true
	}
	if next != nil {
		next[0].batch = next
		next[0].done <- false
	}
}

// send runs the script for every call of batch in one pipeline, through the
// breaker, and stores each call's reply or error. Calls that meet NOSCRIPT
// are sent again with EVAL in a second pipeline.
func (b *batcher) send(batch []*batchCall) {
	l := b.l
	l.count(statBatches)
	l.st[statBatched].Add(uint64(len(batch)))
	done, err := l.breaker.Allow()
	if err != nil {
		for _, c := range batch {
			c.err = err
		}
		return
	}
	ctx := context.Background()
	if l.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.timeout)
		defer cancel()
	}
	if _, single := l.client.(*redis.Client); single {
		done(b.sendMany(ctx, batch))
		return
	}
	cmds := make([]*redis.Cmd, len(batch))
	pipe := l.client.Pipeline()
	for i, c := range batch {
		cmds[i] = pipe.EvalSha(ctx, gcraSHA, []string{l.prefix + c.key}, l.ivArg, l.burstArg, c.n)
	}
	_, _ = pipe.Exec(ctx)
	var again []int
	for i, cmd := range cmds {
		if isNoScript(cmd.Err()) {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		l.count(statLoads)
		pipe = l.client.Pipeline()
		for _, i := range again {
			c := batch[i]
			cmds[i] = pipe.Eval(ctx, gcraScript, []string{l.prefix + c.key}, l.ivArg, l.burstArg, c.n)
		}
		_, _ = pipe.Exec(ctx)
	}
	var first error
	for i, cmd := range cmds {
		c := batch[i]
		v, err := cmd.Int64Slice()
		if err == nil {
			c.r, err = parseReply(v)
		}
		c.err = err
		if first == nil {
			first = err
		}
	}
	done(first)
}

// sendMany decides a whole batch with one run of gcraManyScript, for a
// client of a single node (or of a sentinel's master): one command instead
// of a pipeline of them saves Redis a script call per key.
func (b *batcher) sendMany(ctx context.Context, batch []*batchCall) error {
	l := b.l
	keys := make([]string, len(batch))
	args := make([]any, 2+len(batch))
	args[0], args[1] = l.ivArg, l.burstArg
	for i, c := range batch {
		keys[i] = l.prefix + c.key
		args[2+i] = c.n
	}
	v, err := l.client.EvalSha(ctx, gcraManySHA, keys, args...).Int64Slice()
	if isNoScript(err) {
		l.count(statLoads)
		v, err = l.client.Eval(ctx, gcraManyScript, keys, args...).Int64Slice()
	}
	if err == nil && len(v) != 4*len(batch) {
		err = fmt.Errorf("redislimit: unexpected script reply of %d numbers for %d keys", len(v), len(batch))
	}
	for i, c := range batch {
		if c.err = err; err == nil {
			c.r, _ = parseReply(v[4*i : 4*i+4])
		}
	}
	return err
}
