package conc

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// This file holds fan-in: FanIn and Merge. Fan-out (FanOut, Tee, Partition)
// is in merge_fanout.go; both share the options and the transport
// helpers, fanPump and fanSend, defined here.
//
// Where the speed comes from. The naive merge forwards every item with a
// select on an unbuffered output and ctx.Done(): each item pays a blocking
// hand-off (a park and a wake-up of the consumer, 130–150 ns on the project's
// machines) plus a two-case select. Here each item pays two non-blocking
// channel operations: a receive that takes whatever the input already holds
// and a send into a buffered output. Only when one of them would block does
// the forwarder fall back to a select that also watches ctx.Done(), so the
// select is paid once per burst rather than once per item, and a goroutine
// parks only when there really is nothing to do.

// defaultOutBuffer is the capacity of every output channel unless MergeBuffer
// says otherwise. 64 is where a channel hop stops getting cheaper on the
// project's machines (cap 1 costs about 100 ns a hop, cap 64 about 35 ns;
// see "What things cost" in docs/ARCHITECTURE.md), and it keeps at most 64
// items waiting per output.
const defaultOutBuffer = 64

// A MergeOption configures NewFanIn, FanOut, Tee and Partition; the one
// option is MergeBuffer. Each of them panics with a conc: message when one
// of its options is nil.
type MergeOption interface {
	mergeBuffer() int
}

// mergeBuffer is MergeBuffer's option: the capacity itself.
type mergeBuffer int

func (b mergeBuffer) mergeBuffer() int { return int(b) }

// MergeBuffer sets the capacity of each output channel to n (default 64).
// Buffered items are not lost when the context ends: the output is closed
// behind them and a consumer that keeps reading until it is closed receives
// them. MergeBuffer(0) makes every delivery a hand-off to a reader, which is
// slower per item but keeps no item waiting in front of a stalled consumer.
// MergeBuffer panics if n is negative or above 2^20 (1048576).
func MergeBuffer(n int) MergeOption {
	checkBuffer("MergeBuffer n", n)
	return mergeBuffer(n)
}

// bufferOf is the capacity of every output channel that opts ask for: the
// last MergeBuffer, or defaultOutBuffer.
func bufferOf(opts []MergeOption) int {
	n := defaultOutBuffer
	for i, o := range opts {
		checkOption("Merge", i, o == nil)
		n = o.mergeBuffer()
	}
	return n
}

// A FanIn merges input channels into one output channel, and inputs can be
// added while it runs. Items of one input arrive on Out in the order that
// input sent them; items of different inputs interleave in no set order.
//
// Each added input is drained by its own goroutine until it is closed or the
// context is done; once every added input is drained and Seal has been
// called, Out is closed; a FanIn that is never sealed closes Out only when
// its context ends. An idle FanIn holds no goroutine (a short-lived one
// seals it when the context ends).
//
// When the context is done, the FanIn stops reading its inputs, closes Out
// once its goroutines have returned, and rejects further Add calls. Items
// already in Out's buffer stay readable until Out is closed; an item a
// goroutine had taken from an input but could not yet place in Out (at most
// one per input) is dropped and counted in Stats().Dropped. Inputs are not
// drained after cancellation: their producers must watch the same context.
//
// The zero value is not usable; create a FanIn with NewFanIn. A FanIn is
// safe for concurrent use by multiple goroutines and must not be copied.
type FanIn[T any] struct {
	done <-chan struct{} // ctx.Done(), cached: the forwarders poll it per item
	ctx  context.Context
	out  chan T
	stop func() bool // unregisters the AfterFunc that seals on cancellation; set under mu

	// mu guards the life cycle. It is taken once per Add and once per input
	// when it is drained, never per item.
	mu     sync.Mutex
	sealed bool // no more inputs: Seal was called or ctx is done
	added  int  // inputs accepted by Add
	active int  // inputs still being drained

	// The forwarders publish their counts when they are about to park and
	// when they return, not per item: a shared atomic per item would bounce
	// one cache line between every forwarder and cost more than the hop.
	forwarded atomic.Uint64
	dropped   atomic.Uint64
}

// FanInStats is a snapshot of a FanIn's counters, returned by Stats.
type FanInStats struct {
	Inputs    int    // inputs accepted by Add
	Open      int    // accepted inputs still being drained
	Forwarded uint64 // items placed in Out
	Dropped   uint64 // items taken from an input but dropped because ctx ended
}

// NewFanIn returns a FanIn whose output closes when it is sealed and every
// added input is drained, or soon after ctx is done. The only option is
// MergeBuffer. NewFanIn panics if ctx is nil.
func NewFanIn[T any](ctx context.Context, opts ...MergeOption) *FanIn[T] {
	checkCtx(ctx)
	size := bufferOf(opts)
	f := &FanIn[T]{
		done: ctx.Done(),
		ctx:  ctx,
		out:  make(chan T, size),
	}
	// AfterFunc starts no goroutine until ctx is done, so an idle FanIn
	// holds none; when ctx ends it seals the FanIn, which is what lets Out
	// close even if the caller never gets to call Seal. The lock is held
	// while stop is stored: with a ctx that is already done, f.Seal may run
	// before AfterFunc returns, and closeLocked must then find stop set.
	f.mu.Lock()
	f.stop = context.AfterFunc(ctx, f.Seal)
	f.mu.Unlock()
	return f
}

// Add starts draining in into Out. It never blocks. It returns ErrClosed,
// and adds nothing, once Seal has been called or the context is done; in
// the latter case the error also matches ctx.Err() and keeps
// context.Cause. Every input for which Add returned nil is drained into
// Out before Out is closed, unless the context ends first.
//
// Add panics if in is nil: a nil channel never closes, so Out never would.
func (f *FanIn[T]) Add(in <-chan T) error {
	if in == nil {
		panic("conc: FanIn.Add: in must not be a nil channel")
	}
	f.mu.Lock()
	// ctx is checked under the lock as well as through the AfterFunc, since
	// the AfterFunc's goroutine may not have run yet when ctx has just ended.
	if err := f.ctx.Err(); err != nil {
		f.mu.Unlock()
		return fmt.Errorf("%w: %w", ErrClosed, ctxErr(f.ctx))
	}
	if f.sealed {
		f.mu.Unlock()
		return ErrClosed
	}
	f.added++
	f.active++
	f.mu.Unlock()
	go f.drain(in)
	return nil
}

// Seal declares that no more inputs will be added: Out is closed as soon as
// every input already added is drained (at once if there is none). Seal
// does not block and is idempotent; Add after Seal returns ErrClosed.
func (f *FanIn[T]) Seal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sealed {
		return
	}
	f.sealed = true
	if f.active == 0 {
		f.closeLocked()
	}
}

// Out returns the merged output channel. Every call returns the same
// channel. It is closed after Seal once every added input has been drained,
// or after the context is done once the FanIn's goroutines have stopped.
func (f *FanIn[T]) Out() <-chan T { return f.out }

// Stats returns a snapshot of f's counters. While inputs are being drained
// Forwarded may lag by up to 256 items per open input; once Out is
// closed the counters are final and Forwarded + Dropped is every item the
// FanIn took from its inputs.
func (f *FanIn[T]) Stats() FanInStats {
	f.mu.Lock()
	s := FanInStats{Inputs: f.added, Open: f.active}
	f.mu.Unlock()
	s.Forwarded = f.forwarded.Load()
	s.Dropped = f.dropped.Load()
	return s
}

// drain is the goroutine behind one input.
func (f *FanIn[T]) drain(in <-chan T) {
	if !fanPump(f.done, in, f.out, &f.forwarded) {
		f.dropped.Add(1)
	}
	f.mu.Lock()
	f.active--
	if f.active == 0 && f.sealed {
		f.closeLocked()
	}
	f.mu.Unlock()
}

// closeLocked closes Out. The life-cycle rules make it run exactly once:
// it needs sealed, sealed is set once, and after that active only falls, so
// only the call that sees both sealed and active == 0 first gets here.
func (f *FanIn[T]) closeLocked() {
	f.stop()
	close(f.out)
}

// Merge returns a channel that receives every item of every input and is
// closed once all inputs are closed and drained, or soon after ctx is done.
// Items of one input keep their order; items of different inputs interleave
// in no set order. The output is buffered (64 items); on cancellation the
// rules of FanIn apply: buffered items stay readable, an item in hand is
// dropped, inputs are not drained further.
//
// Merge with no inputs returns a closed channel. It panics if ctx or any
// input is nil. Use FanIn to add inputs while merging or to set MergeBuffer.
func Merge[T any](ctx context.Context, ins ...<-chan T) <-chan T {
	checkCtx(ctx)
	for i, in := range ins {
		if in == nil {
			panic(fmt.Sprintf("conc: Merge: input %d is a nil channel", i))
		}
	}
	f := NewFanIn[T](ctx)
	for _, in := range ins {
		// Add fails only when ctx is already done; Out then closes without
		// reading the inputs, which is what cancellation means.
		_ = f.Add(in)
	}
	f.Seal()
	return f.Out()
}

// fanPump copies in to out until in is closed or done is closed. It
// reports false when it stopped on done with an item in hand, which it then
// dropped, and true otherwise. count, when not nil, receives the number of
// items placed in out; fanPump publishes it when it is about to park, every
// fanPublishEvery items and when it returns, never per item.
func fanPump[T any](done <-chan struct{}, in <-chan T, out chan<- T, count *atomic.Uint64) (intact bool) {
	var n uint64 // items forwarded since the last publication
	for {
		// Poll done once per item: while in is never empty and out never
		// full the loop below never blocks, so this is its only chance to
		// notice cancellation. A non-blocking receive on an open channel
		// takes no lock, so the check costs about a nanosecond.
		select {
		case <-done:
			fanPublish(count, &n)
			return true
		default:
		}
		var v T
		var ok bool
		select {
		case v, ok = <-in:
		default:
			// in is empty: publish the count, then park on in and done.
			fanPublish(count, &n)
			select {
			case v, ok = <-in:
			case <-done:
				return true
			}
		}
		if !ok {
			fanPublish(count, &n)
			return true
		}
		select {
		case out <- v:
			n++
			if n == fanPublishEvery {
				// A burst that never parks still shows up in Stats.
				fanPublish(count, &n)
			}
			continue
		default:
		}
		// out is full: the same, publish, then park on out and done.
		fanPublish(count, &n)
		select {
		case out <- v:
			n++
		case <-done:
			return false
		}
	}
}

// fanPublishEvery bounds how far FanIn.Stats can lag behind a forwarder
// that never parks: one atomic add per 256 items is lost in the noise.
const fanPublishEvery = 256

// fanPublish adds *n to count, if there is a count, and resets *n.
func fanPublish(count *atomic.Uint64, n *uint64) {
	if count != nil && *n > 0 {
		count.Add(*n)
	}
	*n = 0
}

// fanSend places v in out, trying a non-blocking send first and selecting on
// done only when out is full, which halves the cost of a hop (about 40 ns
// against 85 ns; see "What things cost" in docs/ARCHITECTURE.md).
// It reports false, without sending, when done was closed first.
func fanSend[T any](done <-chan struct{}, out chan<- T, v T) bool {
	select {
	case out <- v:
		return true
	default:
	}
	select {
	case out <- v:
		return true
	case <-done:
		return false
	}
}
