package conc

import "sync"

// naiveLockAll locks mus in the order given and returns a function that
// unlocks them in reverse: the multi-lock helper of a first attempt, which
// deadlocks when two goroutines pass the same locks in different orders.
func naiveLockAll(mus ...sync.Locker) (unlock func()) {
	for _, m := range mus {
		m.Lock()
	}
	return func() {
		for i := len(mus) - 1; i >= 0; i-- {
			mus[i].Unlock()
		}
	}
}
