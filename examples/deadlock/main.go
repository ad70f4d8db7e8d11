// Command deadlock plays four classic Go deadlocks side by side: each runs
// first in its naive form, which hangs, then in the form the conc toolkit
// offers, which finishes. It prints a short report and exits in about a
// second:
//
//	go run ./examples/deadlock
//
// With -serve it instead leaves naive forms built from conc's own parts
// hanging and serves the conc monitor page, which flags them as stalled and
// says what each waits on:
//
//	go run ./examples/deadlock -serve 127.0.0.1:6062
//
// A hang is detected by a timeout, never by letting the runtime crash with
// "all goroutines are asleep": the naive goroutines are simply left blocked.
// They leak until the program exits, which is acceptable in a demonstration
// and exactly the bug a server would have.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/concpatterns/conc"
)

// patience is how long a naive form gets before it is declared hung. The
// naive forms below block for good, so any value shows the same thing; a
// short one keeps the whole run brief.
const patience = 200 * time.Millisecond

// giveUp is the deadline the fixed forms put on a channel operation that
// would otherwise wait for good.
const giveUp = 50 * time.Millisecond

// A scenario is one deadlock: its naive form, which should hang, and its
// fixed form, which returns a one-line account of how it ended.
type scenario struct {
	name  string
	naive func()
	fixed func() string
}

var scenarios = []scenario{
	{"lock-order inversion", lockOrderNaive, lockOrderFixed},
	{"send with no receiver", sendNaive, sendFixed},
	{"range over a channel nobody closes", rangeNaive, rangeFixed},
	{"worker waiting on its own full pool", poolNaive, poolFixed},
}

// main runs each scenario's naive form, then its fixed form, and prints one
// row per scenario. The scenarios run one after another, not in parallel, so
// that the goroutines a naive form leaves blocked cannot slow the next row.
func main() {
	addr := flag.String("serve", "", "serve the monitor page on this address while naive forms hang (e.g. 127.0.0.1:6062)")
	flag.Parse()
	if *addr != "" {
		if err := serve(*addr); err != nil {
			fmt.Fprintln(os.Stderr, "deadlock:", err)
			os.Exit(1)
		}
		return
	}
	fmt.Printf("Four classic deadlocks; a naive form is declared hung after %v.\n\n", patience)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "scenario\tnaive\twith conc\thow it ended")
	for _, s := range scenarios {
		naive := "finished?!"
		if !finishes(s.naive, patience) {
			naive = "hung"
		}
		// The fixed form gets a safety net too, so that a broken fix shows
		// up in the report rather than as a demo that never ends.
		var outcome string
		start := time.Now()
		fixed := "hung!"
		if finishes(func() { outcome = s.fixed() }, 10*patience) {
			fixed = "done in <1ms"
			if d := time.Since(start); d >= time.Millisecond {
				fixed = fmt.Sprintf("done in %v", d.Round(time.Millisecond))
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", s.name, naive, fixed, outcome)
	}
	w.Flush()
	fmt.Println("\nThe hung goroutines stay blocked until the program exits: harmless in a demo, a leak in a server.")
}

// finishes runs fn on its own goroutine and reports whether it returned
// within d. If it did not, the goroutine is abandoned, still blocked. This is
// how the demo tells a hang from slowness without relying on the runtime's
// deadlock detector, which only fires when every goroutine is asleep: in a
// real program (a server with a listener, a timer, a signal handler) it
// never does, and the hang goes unnoticed.
func finishes(fn func(), d time.Duration) bool {
	// A timer rather than time.After, stopped on the way out, so that a
	// finished run does not leave one armed.
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// lockOrderNaive: one goroutine locks a then b, the other b then a. The
// barrier makes the fatal interleaving certain: each holds its first lock
// when it reaches for the second.
func lockOrderNaive() {
	var a, b sync.Mutex
	var holding, wg sync.WaitGroup
	holding.Add(2)
	n := 0 // guarded by a and b together
	wg.Go(func() {
		a.Lock()
		holding.Done()
		holding.Wait()
		b.Lock() // held by the other goroutine, which wants a
		n++
		b.Unlock()
		a.Unlock()
	})
	wg.Go(func() {
		b.Lock()
		holding.Done()
		holding.Wait()
		a.Lock()
		n++
		a.Unlock()
		b.Unlock()
	})
	wg.Wait()
}

// lockOrderFixed: the same two goroutines, naming the locks in opposite
// orders, many times over. LockAll takes them in one global order, so
// neither can hold one lock while waiting for the other.
func lockOrderFixed() string {
	const rounds = 10_000
	var a, b sync.Mutex
	var ready, wg sync.WaitGroup
	ready.Add(2)
	n := 0 // guarded by a and b together; the race detector checks it in tests
	wg.Go(func() {
		// Start together, so that the two loops really contend.
		ready.Done()
		ready.Wait()
		for range rounds {
			unlock := conc.LockAll(&a, &b)
			n++
			unlock()
		}
	})
	wg.Go(func() {
		ready.Done()
		ready.Wait()
		for range rounds {
			unlock := conc.LockAll(&b, &a)
			n++
			unlock()
		}
	})
	wg.Wait()
	return fmt.Sprintf("LockAll(a, b) and LockAll(b, a): %d critical sections", n)
}

// sendNaive: a worker sends its result on an unbuffered channel, but the
// caller that would have received it has already returned (it gave up, or
// failed on another error). The send blocks for good.
func sendNaive() {
	results := make(chan int)
	results <- 42
}

// sendFixed: the same send through conc.Send with a deadline gives up and
// reports why, and the worker can end.
func sendFixed() string {
	results := make(chan int)
	// In a real worker ctx would be the request's context: the send ends
	// when the caller's interest ends, not after an arbitrary delay.
	ctx, cancel := context.WithTimeout(context.Background(), giveUp)
	defer cancel()
	err := conc.Send(ctx, results, 42)
	return "Send gave up: " + err.Error()
}

// rangeNaive: the producer sends three values and returns without closing
// the channel, so the consumer's range waits for a fourth for good.
func rangeNaive() {
	ch := make(chan int)
	go func() {
		for i := range 3 {
			ch <- i
		}
		// forgot close(ch)
	}()
	for range ch {
	}
}

// rangeFixed: the producer runs under a context that ends when it returns,
// and the consumer receives with conc.Recv on that context. Recv rather
// than OrDone: each value is handed over directly, so none can be lost
// between the producer's last send and its return.
func rangeFixed() string {
	ch := make(chan int)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer cancel() // the producer's lifetime bounds the consumer's loop
		for i := range 3 {
			ch <- i
		}
		// still forgot close(ch)
	}()
	got := 0
	for {
		// Recv tells the three endings apart: a value, ErrChanClosed (had
		// the producer closed ch), or the producer's context ending.
		_, err := conc.Recv(ctx, ch)
		if err != nil {
			return fmt.Sprintf("Recv got %d values, then: %v (producer returned)", got, err)
		}
		got++
	}
}

// poolNaive: a pool of one worker over a queue of one slot. Job 1 submits a
// follow-up job to its own pool while job 2 fills the queue: the only worker
// that could make room is the one waiting for it.
func poolNaive() {
	jobs := make(chan int, 1)
	var pending sync.WaitGroup
	full := make(chan struct{})
	go func() {
		for j := range jobs {
			if j == 1 {
				<-full
				pending.Add(1)
				jobs <- 3 // the queue is full and we are its only reader
			}
			pending.Done()
		}
	}()
	pending.Add(2)
	jobs <- 1
	jobs <- 2 // returns once the worker holds job 1 and job 2 waits in the queue
	close(full)
	pending.Wait()
	close(jobs)
}

// poolFixed: the same pool, but the follow-up goes through conc.Send with a
// deadline. When the queue stays full the worker learns it, reports the job
// as refused (a real worker might run it inline or fail it upward) and goes
// on with the queue.
func poolFixed() string {
	jobs := make(chan int, 1)
	var pending sync.WaitGroup
	full := make(chan struct{})
	workerDone := make(chan struct{})
	var done []int
	var refused error
	go func() {
		defer close(workerDone)
		for j := range jobs {
			if j == 1 {
				<-full
				ctx, cancel := context.WithTimeout(context.Background(), giveUp)
				pending.Add(1)
				if err := conc.Send(ctx, jobs, 3); err != nil {
					refused = err
					pending.Done()
				}
				cancel()
			}
			done = append(done, j)
			pending.Done()
		}
	}()
	// The same choreography as poolNaive: the worker holds job 1, job 2
	// fills the queue, then job 1 tries to submit its follow-up.
	pending.Add(2)
	jobs <- 1
	jobs <- 2
	close(full)
	pending.Wait()
	// Every job is done or refused, and no sender is left, so closing the
	// queue is safe; the worker's range then ends.
	close(jobs)
	<-workerDone
	if refused == nil {
		refused = errors.New("none")
	}
	return fmt.Sprintf("follow-up refused: %v; jobs %v done", refused, done)
}
