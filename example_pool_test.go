package conc_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/concpatterns/conc"
)

// A pool of three workers squares numbers. One goroutine submits and closes;
// the caller ranges over Results, which closes after the last job.
func ExamplePool() {
	square := func(_ context.Context, n int) (int, error) {
		if n == 4 {
			return 0, errors.New("four is unlucky")
		}
		return n * n, nil
	}
	p := conc.NewPool(3, square, conc.QueueSize(8), conc.JobTimeout(time.Second))
	go func() {
		defer p.Close()
		for n := 1; n <= 5; n++ {
			if err := p.Submit(context.Background(), n); err != nil {
				return
			}
		}
	}()
	var lines []string
	for r := range p.Results() {
		if r.Err != nil {
			lines = append(lines, fmt.Sprintf("%d: error: %v", r.Job, r.Err))
			continue
		}
		lines = append(lines, fmt.Sprintf("%d: %d", r.Job, r.Value))
	}
	sort.Strings(lines) // workers finish in any order
	for _, l := range lines {
		fmt.Println(l)
	}
	s := p.Stats()
	fmt.Printf("submitted %d, completed %d, failed %d\n", s.Submitted, s.Completed, s.Failed)
	// Output:
	// 1: 1
	// 2: 4
	// 3: 9
	// 4: error: four is unlucky
	// 5: 25
	// submitted 5, completed 4, failed 1
}

// With OnResult the workers hand every result to a callback, so nothing
// can stall on an unread channel; Stop waits for the queued jobs.
func ExampleOnResult() {
	total := make(chan int, 1)
	total <- 0
	p := conc.NewPool(2, func(_ context.Context, n int) (int, error) { return n * 10, nil },
		conc.OnResult(func(r conc.Result[int, int]) { total <- <-total + r.Value }))
	for n := range 4 {
		_ = p.Submit(context.Background(), n)
	}
	if err := p.Stop(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println(<-total)
	// Output: 60
}
