package conc

import (
	"strconv"
	"sync"
	"testing"
)

// BenchmarkLockAll measures locking n uncontended mutexes and unlocking
// them, one op per set. The baseline locks the same mutexes by hand in a
// fixed order, the discipline LockAll automates. LockAll gets them in a
// shuffled order, so that its sort does real work.
func BenchmarkLockAll(b *testing.B) {
	for _, n := range []int{2, 8} {
		mus := make([]sync.Mutex, n)
		shuffled := make([]sync.Locker, n)
		for i := range shuffled {
			shuffled[i] = &mus[(i*5+3)%n]
		}
		w := "n=" + strconv.Itoa(n)
		b.Run(w+"/conc", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				unlock := LockAll(shuffled...)
				unlock()
			}
		})
		// mutex is the helper a programmer writes first: lock the
		// mutexes in the order given, unlock in reverse. It deadlocks
		// when two callers pass the same mutexes in different orders,
		// which is what LockAll's sort prevents; here it gets the same
		// shuffled order LockAll does.
		b.Run(w+"/mutex", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				unlock := naiveLockAll(shuffled...)
				unlock()
			}
		})
		// chan uses channels as locks, taken in a fixed order: a send on a
		// channel of capacity one locks, a receive unlocks. (An unbuffered
		// channel cannot hold a lock without a goroutine to serve it.)
		b.Run(w+"/chan", func(b *testing.B) {
			b.ReportAllocs()
			locks := make([]chan struct{}, n)
			for i := range locks {
				locks[i] = make(chan struct{}, 1)
			}
			for b.Loop() {
				for _, l := range locks {
					l <- struct{}{}
				}
				for i := len(locks) - 1; i >= 0; i-- {
					<-locks[i]
				}
			}
		})
		b.Run(w+"/handordered", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for i := range mus {
					mus[i].Lock()
				}
				for i := len(mus) - 1; i >= 0; i-- {
					mus[i].Unlock()
				}
			}
		})
	}
}
