package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/concpatterns/conc"
	"github.com/concpatterns/conc/viz"
)

// stallAfter is how soon the served page flags a hang: the naive forms never
// make progress again, so a short time is enough.
const stallAfter = 2 * time.Second

// hang starts naive forms of two scenarios built from conc's own parts, so
// that m can see them hang:
//
//   - "worker waiting on its own full pool": a Pool of one worker and one
//     queue slot whose job submits a follow-up with a context that never
//     ends, while another job fills the queue;
//   - "send with no receiver": a pipeline run whose output nobody reads,
//     and one whose stage sends on a channel nobody receives from.
//
// Each is flagged as stalled once stallAfter has passed, with what it waits
// on. stop ends them all (in a real program nothing would).
func hang(m *conc.Monitor) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var pool *conc.Pool[int, int]
	taken, queued := make(chan struct{}), make(chan struct{})
	pool = conc.NewPool(1, func(_ context.Context, job int) (int, error) {
		if job == 1 {
			close(taken)
			<-queued
			// The naive follow-up: job 1 submits to its own pool, whose
			// only worker is itself, while job 2 fills the queue. ctx
			// has no deadline; only stop ends it, as nothing would in a
			// real program.
			return 0, pool.Submit(ctx, 3)
		}
		return job, nil
	}, conc.QueueSize(1), conc.OnResult(func(conc.Result[int, int]) {}))
	m.Watch("naive pool: job submits to its own full pool", pool)
	_ = pool.Submit(ctx, 1)
	<-taken
	_ = pool.Submit(ctx, 2) // fills the queue
	close(queued)

	// Run's output, which nobody reads: the last stage blocks handing on.
	id := func(_ context.Context, v int) (int, error) { return v, nil }
	unread := conc.Monitored(m, "naive: output nobody reads",
		conc.Map(id, conc.Named("produce results"), conc.StageBuffer(0)))
	_, waitUnread := unread.Run(ctx, conc.From(ctx, 1, 2, 3))

	// A stage that sends on a channel nobody receives from: stuck inside
	// its own function.
	results := make(chan int)
	send := conc.Monitored(m, "naive: send with no receiver",
		conc.Map(func(ctx context.Context, v int) (int, error) {
			select {
			case results <- v: // nobody receives
			case <-ctx.Done():
			}
			return v, nil
		}, conc.Named("send result")))
	out, waitSend := send.Run(ctx, conc.From(ctx, 1, 2, 3))
	go func() {
		defer close(done)
		for range out {
		}
		_ = waitSend()
		_ = waitUnread()
	}()
	return func() {
		cancel()
		<-done
		_ = pool.Close()
		for range pool.Results() {
		}
		m.Unwatch("naive pool: job submits to its own full pool")
	}
}

// serve runs the hanging scenarios and serves their page on addr until
// Ctrl-C.
func serve(addr string) error {
	m := conc.NewMonitor(conc.StallAfter(stallAfter))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/debug/conc/", http.StripPrefix("/debug/conc", viz.Handler(m)))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	stop := hang(m)
	fmt.Printf("The naive forms are hanging now; after %v the page flags them as stalled:\n  http://%s/debug/conc/\n(Ctrl-C to stop)\n", stallAfter, ln.Addr())
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	<-ctx.Done()
	stop()
	return srv.Close()
}
