package conc_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/concpatterns/conc"
	"golang.org/x/sync/semaphore"
)

// A weighted semaphore is golang.org/x/sync/semaphore's job, and conc
// composes with it rather than duplicating it: here eight workers decode
// images of different sizes, but never more than 100 MB of them at once.
// Workers bounds how many items run; the semaphore bounds what they weigh.
func Example_weightedSemaphore() {
	const budgetMB = 100
	mem := semaphore.NewWeighted(budgetMB)
	var inUse, peak atomic.Int64

	decode := conc.Map(func(ctx context.Context, sizeMB int64) (int64, error) {
		if err := mem.Acquire(ctx, sizeMB); err != nil {
			return 0, err // ctx ended while waiting for memory
		}
		defer mem.Release(sizeMB)
		now := inUse.Add(sizeMB)
		for p := peak.Load(); now > p && !peak.CompareAndSwap(p, now); p = peak.Load() {
		}
		defer inUse.Add(-sizeMB)
		return sizeMB * 2, nil // "decoded" size
	}, conc.Workers(8))

	sizes := []int64{60, 30, 50, 20, 70, 10, 40, 90}
	out, err := conc.Collect(context.Background(), decode, slices.Values(sizes))
	var total int64
	for _, v := range out {
		total += v
	}
	fmt.Println(len(out), total, err)
	fmt.Println("peak within budget:", peak.Load() <= budgetMB)
	// Output:
	// 8 740 <nil>
	// peak within budget: true
}
