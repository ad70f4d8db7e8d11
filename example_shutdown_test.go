package conc_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/concpatterns/conc"
)

// A service shuts down in phases, each with its own deadline: stop taking
// requests (http.Server.Shutdown has the phase signature already), let the
// work in flight drain, then close what is left. In a real program the
// Shutdown would be made with conc.WithSignals() and started by SIGINT or
// SIGTERM; here Trigger starts it.
func ExampleShutdown() {
	work := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		work <- r.URL.Path
		io.WriteString(w, "queued")
	}))
	resp, err := http.Get(srv.URL + "/job-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()

	sd := conc.NewShutdown()
	sd.Add("stop intake", 5*time.Second, srv.Config.Shutdown)
	sd.Add("drain", 5*time.Second, func(ctx context.Context) error {
		close(work) // intake is stopped: no handler sends any more
		for job := range work {
			fmt.Println("finished", job)
		}
		return nil
	})
	sd.Add("close", time.Second, func(context.Context) error {
		srv.Close()
		return nil
	})

	sd.Trigger()
	fmt.Println("shutdown:", sd.Run(context.Background()))
	// Output:
	// finished /job-1
	// shutdown: <nil>
}

// A service's main opts into signal handling: the first SIGINT or SIGTERM
// starts the shutdown, another one forces it. The handler exists only while
// Run runs. (No Output line: the example is compiled, not run, since it
// waits for a signal.)
func ExampleWithSignals() {
	srv := &http.Server{Addr: "localhost:8080"}
	go srv.ListenAndServe()

	sd := conc.NewShutdown(conc.WithSignals()) // os.Interrupt and SIGTERM
	sd.Add("stop intake", 10*time.Second, srv.Shutdown)
	sd.Add("flush", 5*time.Second, func(ctx context.Context) error {
		return nil // flush buffers, close the database, ...
	})
	if err := sd.Run(context.Background()); err != nil {
		fmt.Println(err) // names every phase that failed, timed out or was skipped
	}
}
