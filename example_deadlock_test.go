package conc_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/concpatterns/conc"
)

// Send gives up on a receiver that never comes instead of hanging forever.
func ExampleSend() {
	results := make(chan int) // nobody will ever receive
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err := conc.Send(ctx, results, 42)
	fmt.Println(err)
	// Output: context deadline exceeded
}

// Recv tells a closed channel apart from a value and from a done context.
func ExampleRecv() {
	ch := make(chan string, 2)
	ch <- "a"
	ch <- "b"
	close(ch)
	for {
		v, err := conc.Recv(context.Background(), ch)
		if errors.Is(err, conc.ErrChanClosed) {
			fmt.Println("end")
			return
		}
		fmt.Println(v)
	}
	// Output:
	// a
	// b
	// end
}

type account struct {
	mu      sync.Mutex
	balance int
}

// transfer locks both accounts in LockAll's global order, so transfers in
// opposite directions cannot deadlock.
func transfer(from, to *account, amount int) {
	defer conc.LockAll(&from.mu, &to.mu)()
	from.balance -= amount
	to.balance += amount
}

// LockAll takes several locks in one global order, whatever order the
// caller names them in.
func ExampleLockAll() {
	a, b := &account{balance: 100}, &account{balance: 100}
	var wg sync.WaitGroup
	for range 1000 {
		wg.Go(func() { transfer(a, b, 1) })
		wg.Go(func() { transfer(b, a, 1) })
	}
	wg.Wait()
	fmt.Println(a.balance, b.balance)
	// Output: 100 100
}
