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
