package conc_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"time"

	"github.com/concpatterns/conc"
)

// A service shuts down in phases, each with its own deadline: stop taking
// requests (http.Server.Shutdown has the phase signature already), let the
// pool finish the jobs it accepted (Pool.Stop has it too), then close the
// broker that fans results out, and what is left. In a real program the
// Shutdown would be made with conc.WithSignals() and started by SIGINT or
// SIGTERM; here Trigger starts it.
func ExampleShutdown() {
	events := conc.NewBroker[string]()
	done := events.Subscribe("jobs.done", conc.SubBuffer(16))
	pool := conc.NewPool(2, func(ctx context.Context, job string) (string, error) {
		return strings.ToUpper(job), nil
	}, conc.OnResult(func(r conc.Result[string, string]) {
		events.Publish(context.Background(), "jobs.done", r.Value)
	}))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := pool.Submit(r.Context(), strings.TrimPrefix(r.URL.Path, "/")); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "queued")
	}))
	for _, job := range []string{"a", "b", "c"} {
		resp, err := http.Get(srv.URL + "/" + job)
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
	}

	sd := conc.NewShutdown()
	sd.Add("stop intake", 5*time.Second, srv.Config.Shutdown)
	sd.Add("drain pool", 5*time.Second, pool.Stop)
	sd.Add("close broker", time.Second, func(context.Context) error { return events.Close() })
	sd.Add("close listener", time.Second, func(context.Context) error {
		srv.Close()
		return nil
	})

	sd.Trigger()
	fmt.Println("shutdown:", sd.Run(context.Background()))
	var got []string
	for v := range done.C() { // closed by the broker's Close
		got = append(got, v)
	}
	slices.Sort(got)
	fmt.Println("finished", got)
	fmt.Println("submit after shutdown:", pool.Submit(context.Background(), "late"))
	// Output:
	// shutdown: <nil>
	// finished [A B C]
	// submit after shutdown: conc: closed
}

// A service's main opts into signal handling: the first SIGINT or SIGTERM
// starts the shutdown, another one forces it. The handler exists only while
// Run runs. HardDeadline forces it too, should a phase ignore its context,
// so that Run returns even when nobody sends the second signal. (No Output line: the example is compiled, not run, since it
// waits for a signal.)
func ExampleWithSignals() {
	srv := &http.Server{Addr: "localhost:8080"}
	go srv.ListenAndServe()

	sd := conc.NewShutdown(
		conc.WithSignals(),                // os.Interrupt and SIGTERM
		conc.HardDeadline(20*time.Second), // above 10s + 5s: cuts only an overrun
	)
	sd.Add("stop intake", 10*time.Second, srv.Shutdown)
	sd.Add("flush", 5*time.Second, func(ctx context.Context) error {
		return nil // flush buffers, close the database, ...
	})
	if err := sd.Run(context.Background()); err != nil {
		fmt.Println(err) // names every phase that failed, timed out or was skipped
	}
}
