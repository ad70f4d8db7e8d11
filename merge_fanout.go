package conc

import (
	"context"
	"hash/maphash"
)

// This file holds fan-out: FanOut, Tee and Partition. They share the
// transport of merge.go (fanPump, fanSend): a non-blocking operation first,
// a select on ctx.Done() only when it would block.
//
// What happens to an item in hand when ctx ends is the same everywhere: the
// goroutine that held it drops it, closes its outputs and returns. Items
// already in an output's buffer stay readable until the consumer reaches
// the close. The input is not drained: its producer must watch ctx itself.
// None of these functions can report a dropped item (they return only
// channels); a caller that needs exact accounting cancels only after the
// input is closed and the outputs are drained, which loses nothing.

// FanOut distributes the items of in over n output channels: each item goes
// to exactly one output, to whichever is ready to take it. Every output has
// its own goroutine that takes the next item from in only once its previous
// item is placed in its output, so a stalled consumer holds back at most one
// item in hand plus its output's buffer (64 items by default; OutBuffer(0)
// leaves only the one in hand) while the other outputs keep flowing.
//
// Each output receives its items in the order in sent them; nothing orders
// items across outputs. The outputs are closed once in is closed and
// drained, or soon after ctx is done. On cancellation, items already in an
// output's buffer stay readable until it is closed, an item a goroutine
// holds in hand (at most one per output) is dropped, and in is not drained
// further. FanOut panics if ctx or in is nil, n < 1 or n > 65536.
func FanOut[T any](ctx context.Context, in <-chan T, n int, opts ...MergeOption) []<-chan T {
	fanCheck("FanOut", ctx, in, n)
	size := bufferOf(opts)
	done := ctx.Done()
	outs := make([]<-chan T, n)
	for i := range outs {
		out := make(chan T, size)
		outs[i] = out
		// One goroutine per output rather than one goroutine picking an
		// output per item: picking "whichever is ready" among n channels
		// needs a select of dynamic size (reflect.Select, about 1 µs and
		// allocations per item), while n goroutines competing for in get
		// the same effect from the runtime for the price of a receive.
		go func() {
			defer close(out)
			fanPump(done, in, out, nil)
		}()
	}
	return outs
}

// Tee copies every item of in to each of n output channels, in the order in
// sent them. A single goroutine delivers each item to output 0, then 1, and
// so on, before it takes the next: a slow output therefore stalls all the
// others once its buffer (64 items by default, see OutBuffer) is full. Give
// the outputs a buffer that covers the expected difference in pace, or let
// every consumer keep up.
//
// Items are copied by assignment: if T holds pointers, slices or maps, the
// outputs share what they refer to, and consumers must not mutate it.
//
// The outputs are closed once in is closed and drained, or soon after ctx
// is done; an item being delivered when ctx ends may have reached some
// outputs and not the others. Tee panics if ctx or in is nil, n < 1 or
// n > 65536.
func Tee[T any](ctx context.Context, in <-chan T, n int, opts ...MergeOption) []<-chan T {
	fanCheck("Tee", ctx, in, n)
	outs, views := makeOuts[T](n, bufferOf(opts))
	done := ctx.Done()
	go func() {
		defer closeOuts(outs)
		for {
			v, ok, _ := fanRecv(done, in)
			if !ok {
				return
			}
			for _, out := range outs {
				if !fanSend(done, out, v) {
					return
				}
			}
		}
	}()
	return views
}

// Partition routes the items of in to n output channels by key: items with
// equal keys always go to the same output, and each output receives its
// items in the order in sent them, so the order of items of one key is
// kept. Keys are spread over the outputs by hash/maphash with a seed chosen
// per call; which output a key lands on differs from call to call.
//
// A single goroutine routes every item, so a slow output stalls all the
// others once its buffer (64 items by default, see OutBuffer) is full;
// this is the price of keeping order per key.
//
// Because Partition runs user code (key), it returns, like Stage.Run, a
// wait function beside the outputs. wait blocks until Partition's goroutine
// has returned (its outputs are closed by then) and reports why it stopped:
// nil when in was closed and drained; an error matching ctx.Err() (and
// keeping context.Cause) when ctx ended first; a *PanicError when key
// panicked, or an error when key called runtime.Goexit. After a panic the
// item being routed is lost (the error stands for it), the outputs are
// closed and in is no longer read: cancel the context its producer watches.
// Calling wait is optional; it may be called any number of times.
//
// Partition panics if ctx, in or key is nil, n < 1 or n > 65536. Routing
// does not allocate per item.
func Partition[T any, K comparable](ctx context.Context, in <-chan T, n int, key func(T) K, opts ...MergeOption) (outs []<-chan T, wait func() error) {
	fanCheck("Partition", ctx, in, n)
	checkFunc("Partition key", key == nil)
	chans, views := makeOuts[T](n, bufferOf(opts))
	var err error // written by the goroutine before it closes finished
	finished := make(chan struct{})
	go func() {
		normal := false
		defer func() {
			// One recover for the whole run rather than one per key call:
			// a panic ends the run anyway, and this keeps the per-item
			// path free of deferred calls.
			if !normal {
				err = recovered(recover())
			}
			closeOuts(chans)
			close(finished)
		}()
		err = partition(ctx, in, chans, key)
		normal = true
	}()
	wait = func() error {
		<-finished
		return err
	}
	return views, wait
}

// partition is the routing loop of Partition. It returns nil when in is
// drained and the context's error when ctx ended first.
func partition[T any, K comparable](ctx context.Context, in <-chan T, outs []chan T, key func(T) K) error {
	done := ctx.Done()
	// The seed is made once per call, so nothing is allocated per item:
	// maphash.Comparable hashes a comparable value in place.
	seed := maphash.MakeSeed()
	n := uint64(len(outs))
	for {
		v, ok, stopped := fanRecv(done, in)
		if stopped {
			return ctxErr(ctx)
		}
		if !ok {
			return nil
		}
		out := outs[0]
		if n > 1 {
			out = outs[maphash.Comparable(seed, key(v))%n]
		} else {
			// Still call key with one output, so that a key that panics
			// does so whatever n is.
			_ = key(v)
		}
		if !fanSend(done, out, v) {
			return ctxErr(ctx)
		}
	}
}

// fanRecv takes the next item from in: without a select while in holds
// items, parking on in and done only when in is empty. ok is false when in
// is closed or done is closed; stopped tells the two apart.
func fanRecv[T any](done <-chan struct{}, in <-chan T) (v T, ok, stopped bool) {
	select {
	case <-done:
		return v, false, true
	default:
	}
	select {
	case v, ok = <-in:
		return v, ok, false
	default:
	}
	select {
	case v, ok = <-in:
		return v, ok, false
	case <-done:
		return v, false, true
	}
}

// makeOuts makes n output channels with the given buffer, and the same
// channels as receive-only views for the caller.
func makeOuts[T any](n, buffer int) ([]chan T, []<-chan T) {
	chans := make([]chan T, n)
	views := make([]<-chan T, n)
	for i := range chans {
		chans[i] = make(chan T, buffer)
		views[i] = chans[i]
	}
	return chans, views
}

func closeOuts[T any](outs []chan T) {
	for _, out := range outs {
		close(out)
	}
}

// fanCheck holds the argument checks shared by the fan-out functions.
func fanCheck[T any](fn string, ctx context.Context, in <-chan T, n int) {
	checkCtx(ctx)
	if in == nil {
		panic("conc: " + fn + ": in must not be a nil channel")
	}
	checkPositive(fn+" n", n)
	checkAtMost(fn+" n", n, maxWorkers) // n channels (and goroutines) made at once
}
