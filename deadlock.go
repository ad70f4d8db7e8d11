package conc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"unsafe"
)

// This file holds the deadlock-prevention helpers: channel operations that a
// context can abandon (Send, Recv) and ordered locking (LockAll).
//
// No timeout forms (SendTimeout, RecvTimeout) are offered. A call site that
// needs one writes context.WithTimeout and a deferred cancel, two lines that
// compose with the deadline the caller already has; a duration argument would
// introduce a second, competing deadline, double the API, and save an
// allocation only where a channel operation is about to block anyway.

// ErrChanClosed is returned by Recv when the channel is closed and drained.
// It plays the role io.EOF plays for readers: the end of the stream, not a
// failure, and callers compare with errors.Is.
var ErrChanClosed = errors.New("conc: channel closed")

// Send sends v on ch, or gives up when ctx is done and returns an error that
// matches ctx.Err() (and carries context.Cause(ctx)). When ch is ready, Send
// succeeds even if ctx is already done, as golang.org/x/sync/semaphore's
// Acquire does: the send cannot block, so there is nothing to abandon, and
// trying it first keeps the common case to one non-blocking operation.
//
// A nil ch blocks until ctx is done, as a send on a nil channel blocks
// forever. A closed ch panics, exactly like the send statement: only the
// owner of a channel closes it, after its last send, so a send on a closed
// channel is a bug in the program's ownership, not a run-time condition.
// Turning it into an error would invite receivers to close channels to stop
// senders, a pattern that loses any value sent just before the close.
func Send[T any](ctx context.Context, ch chan<- T, v T) error {
	checkCtx(ctx)
	// The one-case select with default compiles to a non-blocking send,
	// which is several times cheaper than the two-case select below.
	select {
	case ch <- v:
		return nil
	default:
	}
	select {
	case ch <- v:
		return nil
	case <-ctx.Done():
		return ctxErr(ctx)
	}
}

// Recv receives a value from ch. It returns ErrChanClosed once ch is closed
// and drained, and an error matching ctx.Err() (carrying context.Cause(ctx))
// when ctx is done first. As with Send, a ready ch wins over a done ctx, and
// a nil ch blocks until ctx is done.
func Recv[T any](ctx context.Context, ch <-chan T) (T, error) {
	checkCtx(ctx)
	select {
	case v, ok := <-ch:
		if !ok {
			return v, ErrChanClosed
		}
		return v, nil
	default:
	}
	select {
	case v, ok := <-ch:
		if !ok {
			return v, ErrChanClosed
		}
		return v, nil
	case <-ctx.Done():
		var zero T
		return zero, ctxErr(ctx)
	}
}

// lockSmall is how many Lockers LockAll sorts in an array inside the lock
// set; more spill to a slice on the heap.
const lockSmall = 8

// lockSet is what LockAll holds between locking and unlocking. It is small
// and fixed-size so that, when LockAll is inlined and the caller does not let
// unlock escape (the usual defer LockAll(a, b)() or unlock := ...; defer
// unlock()), the whole set and the unlock closure live on the caller's stack.
type lockSet struct {
	// n is the number of distinct Lockers held; unlock sets it to zero,
	// which is what makes a second call do nothing.
	n     int
	small [lockSmall]sync.Locker
	more  []sync.Locker
}

// LockAll locks every Locker in mus and returns the function that unlocks
// them. It acquires them in one global order, whatever order they are passed
// in, so two goroutines locking {a, b} and {b, a} through LockAll cannot
// deadlock each other. The same Locker passed twice is locked once. unlock
// releases them in the reverse order; calling it again does nothing. Like
// Mutex.Unlock it may be called from another goroutine, but two calls of the
// same unlock must not race each other.
//
// The order is ascending address of the Locker's pointer, so every Locker
// must be a pointer (or another pointer-shaped type such as a chan or a
// map), as *sync.Mutex, *sync.RWMutex and RWMutex.RLocker() are. A Locker
// of a struct type with value methods is copied into every interface value
// that holds it, so it has no stable address and LockAll cannot order it
// (nor tell duplicates apart). Two Lockers at the same address
// with different types (an RWMutex and its RLocker) are distinct and are
// ordered by type; locking both deadlocks, exactly as it would by hand.
//
// LockAll blocks until it holds every lock. The order guards only against
// other LockAll calls: code that also locks the same mutexes by hand, in
// another order, can still deadlock with it. LockAll panics if a Locker is
// nil; a panic in a Locker's Lock leaves the ones before it locked.
//
// With at most 8 arguments, a call that does not let unlock escape does not
// allocate.
func LockAll(mus ...sync.Locker) (unlock func()) {
	// (BenchmarkLockAll: under 1.5 times the cost of locking the same
	// mutexes by hand in a fixed order.)
	var ls lockSet
	ls.lock(mus)
	return ls.unlock
}

// lockWords returns the two machine words of an interface value: the type
// (itab) pointer and the data pointer. For a pointer-shaped Locker the data
// word is the pointer itself, which is what makes it a stable global key:
// the Go heap does not move objects, and every Locker passed to LockAll
// escapes to the heap (a goroutine's stack, which can move, never holds it).
// The layout is the runtime's, not a promise of the language:
// TestLockWordsLayout fails if a Go release changes it.
func lockWords(l *sync.Locker) (typ, data uintptr) {
	w := (*[2]uintptr)(unsafe.Pointer(l))
	return w[0], w[1]
}

// lockLess orders Lockers by data pointer, then by type.
func lockLess(a, b *sync.Locker) bool {
	at, ad := lockWords(a)
	bt, bd := lockWords(b)
	return ad < bd || ad == bd && at < bt
}

// lock sorts mus into ls, drops duplicates, then locks in order.
func (ls *lockSet) lock(mus []sync.Locker) {
	var s []sync.Locker
	n := 0
	if len(mus) <= lockSmall {
		// Insertion sort that skips duplicates as it goes: at most 28
		// comparisons, no call, no allocation, and one pass over mus that
		// also checks for nil.
		s = ls.small[:]
		for i, l := range mus {
			if _, data := lockWords(&l); data == 0 {
				lockNilPanic(i)
			}
			j := n
			for j > 0 && lockLess(&l, &s[j-1]) {
				j--
			}
			if j > 0 && !lockLess(&s[j-1], &l) {
				continue // equal to s[j-1]: already in the set
			}
			for k := n; k > j; k-- {
				s[k] = s[k-1]
			}
			s[j] = l
			n++
		}
	} else {
		s, n = ls.sortMore(mus)
	}
	ls.n = n
	// The type switch calls a *sync.Mutex directly: the check is one
	// compare, and the direct call inlines Mutex.Lock's fast path where the
	// interface call could not. Written out here rather than in a helper,
	// because the helper would not be inlined and the call costs as much as
	// an uncontended Lock.
	for _, l := range s[:n] {
		if m, ok := l.(*sync.Mutex); ok {
			m.Lock()
		} else {
			l.Lock()
		}
	}
}

// sortMore is lock's path for more than lockSmall Lockers: a sorted copy
// of mus on the heap, without duplicates, kept in ls.more.
func (ls *lockSet) sortMore(mus []sync.Locker) ([]sync.Locker, int) {
	n := 0
	for i, l := range mus {
		if _, data := lockWords(&l); data == 0 {
			lockNilPanic(i)
		}
	}
	// ls.more is set from this copy only, never from lock's s, which may
	// be ls.small: escape analysis, which does not follow branches, would
	// conclude that ls.small could be stored in *ls and move every lockSet
	// to the heap.
	more := slices.Clone(mus)
	slices.SortFunc(more, func(a, b sync.Locker) int {
		switch {
		case lockLess(&a, &b):
			return -1
		case lockLess(&b, &a):
			return 1
		}
		return 0
	})
	// Duplicates are adjacent now; compact them out in place. Equal
	// means neither is less: both words match. (Comparing the interfaces
	// with == could panic on a Locker of a non-comparable type.)
	for i := range more {
		if n > 0 && !lockLess(&more[n-1], &more[i]) {
			continue
		}
		more[n] = more[i]
		n++
	}
	ls.more = more
	return more, n
}

// lockNilPanic reports a nil Locker: a nil interface, or a typed nil such
// as a (*sync.Mutex)(nil), whose data word is zero too (no non-nil value
// has a zero data word: even a zero-size one points at the runtime's
// zero-size base). It is kept out of lock so that the
// message formatting does not weigh on lock's code.
func lockNilPanic(i int) {
	panic(fmt.Sprintf("conc: LockAll mus[%d] must not be nil", i))
}

// unlock releases in reverse order, once. Zeroing n first makes a second
// call a no-op; like Mutex.Unlock, unlock calls must not race each other,
// and an unlock handed to another goroutine needs the same happens-before
// edge any shared value needs.
func (ls *lockSet) unlock() {
	n := ls.n
	ls.n = 0
	s := ls.small[:]
	if ls.more != nil {
		s = ls.more
	}
	for i := n - 1; i >= 0; i-- {
		if m, ok := s[i].(*sync.Mutex); ok {
			m.Unlock()
		} else {
			s[i].Unlock()
		}
	}
}
