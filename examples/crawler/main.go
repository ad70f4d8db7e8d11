// Command crawler shows conc's primitives composed in one program: it starts
// a local test server that is slow on some pages, fails some requests once,
// has one host down for good and rate-limits its clients, then fetches a few
// thousand URLs from it through a conc pipeline:
//
//   - a parallel Map stage fetches the pages;
//   - a KeyedLimiter keeps each host under its request budget;
//   - Retry with jittered backoff retries transient failures, honouring the
//     server's Retry-After hint through RetryAfter;
//   - a Breaker per host stops hammering the host that is down;
//   - a Broker publishes one event per URL, drawn as a live progress line;
//   - a Shutdown drains the crawl when it ends or on Ctrl-C: stop handing
//     out URLs, wait for those in flight, close the broker and the server.
//
// A conc.Monitor can watch it all: -table prints the monitor's text table
// every second instead of the progress line, and -serve ADDR serves the
// monitor page (the pipeline graph, the limiter, one breaker per host, the
// broker) during the crawl and afterwards, until Ctrl-C:
//
//	go run ./examples/crawler -serve 127.0.0.1:6063 -urls 20000
//
// It prints a summary whose counts must add up, and exits non-zero if any
// URL was lost.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/concpatterns/conc"
	"github.com/concpatterns/conc/viz"
)

func main() {
	cfg := defaultConfig()
	flag.IntVar(&cfg.URLs, "urls", cfg.URLs, "number of URLs to fetch")
	flag.IntVar(&cfg.Hosts, "hosts", cfg.Hosts, "number of healthy hosts (one more is down)")
	flag.IntVar(&cfg.Workers, "workers", cfg.Workers, "concurrent fetches")
	flag.Float64Var(&cfg.PerHost, "per-host", cfg.PerHost, "requests per second the crawler allows itself per host")
	serveAddr := flag.String("serve", "", "serve the conc monitor page on this address (keep it internal, as for pprof)")
	table := flag.Bool("table", false, "print the monitor's table every second instead of the progress line")
	flag.Parse()
	cfg.Signals = []os.Signal{os.Interrupt, syscall.SIGTERM}

	var progress io.Writer = os.Stderr
	if *serveAddr != "" || *table {
		cfg.Monitor = conc.NewMonitor(conc.StallAfter(5 * time.Second))
	}
	var stopServe func() error
	if *serveAddr != "" {
		url, stop, err := serveMonitor(*serveAddr, cfg.Monitor)
		if err != nil {
			fmt.Fprintln(os.Stderr, "crawler:", err)
			os.Exit(1)
		}
		stopServe = stop
		fmt.Fprintf(os.Stderr, "conc monitor: %s\n", url)
	}
	stopTable := func() {}
	if *table {
		progress = io.Discard
		stopTable = printTable(cfg.Monitor, os.Stderr, time.Second)
	}

	sum, err := run(context.Background(), cfg, progress)
	stopTable()
	fmt.Println(sum)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crawler:", err)
	}
	if stopServe != nil {
		fmt.Fprintln(os.Stderr, "crawl over; the page stays up until Ctrl-C")
		ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		<-ctx.Done()
		cancel()
		_ = stopServe()
	}
	if lost := sum.Lost(); lost != 0 {
		fmt.Fprintf(os.Stderr, "crawler: %d URLs unaccounted for\n", lost)
		os.Exit(1)
	}
	if err != nil {
		os.Exit(1)
	}
}

// config sets the size and pace of a crawl.
type config struct {
	URLs    int
	Hosts   int
	Workers int
	PerHost float64 // the crawler's own budget per host, requests a second
	Slow    time.Duration
	Signals []os.Signal   // handled during the run; none in tests
	Monitor *conc.Monitor // watches the run when not nil
}

func defaultConfig() config {
	return config{URLs: 3000, Hosts: 8, Workers: 32, PerHost: 400, Slow: 30 * time.Millisecond}
}

// run crawls and shuts down; progress goes to progress, the summary is the
// caller's to print.
func run(ctx context.Context, cfg config, progress io.Writer) (summary, error) {
	start := time.Now()
	// The server grants each host a little more than the crawler allows
	// itself, so 429s are the exception that Retry handles, not the rule.
	srv := newServer(cfg.PerHost*1.25, cfg.Slow)

	hosts := make([]string, 0, cfg.Hosts+1)
	for i := range cfg.Hosts {
		hosts = append(hosts, hostName(i))
	}
	hosts = append(hosts, downHost)
	c := newCrawler(srv.URL, hosts, cfg)

	events := conc.NewBroker[event]()
	if m := cfg.Monitor; m != nil {
		m.Watch("events", events)
		m.Watch("per-host limiter", c.limit)
		for _, h := range hosts {
			m.Watch(h, c.breakers[h])
		}
	}
	sub := events.Subscribe("crawl.>", conc.SubBuffer(256), conc.SubPolicy(conc.DropOldest))
	printed := make(chan struct{})
	go func() {
		defer close(printed)
		drawProgress(progress, sub.C(), cfg.URLs)
	}()

	var opts []conc.ShutdownOption
	if len(cfg.Signals) > 0 {
		opts = append(opts, conc.WithSignals(cfg.Signals...))
	}
	sd := conc.NewShutdown(opts...)

	crawlCtx, cancelCrawl := context.WithCancel(ctx)
	defer cancelCrawl()
	crawled := make(chan struct{})
	var tally summary
	var crawlErr error
	go func() {
		defer close(crawled)
		tally, crawlErr = c.crawl(crawlCtx, cfg.URLs, events)
		sd.Trigger() // a crawl that ends by itself shuts down like Ctrl-C
	}()

	// The phases, in the order a service shuts down.
	sd.Add("stop intake", time.Second, func(context.Context) error {
		c.stopIntake()
		return nil
	})
	sd.Add("drain", 20*time.Second, func(ctx context.Context) error {
		select {
		case <-crawled:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	sd.Add("cancel fetches", 5*time.Second, func(ctx context.Context) error {
		cancelCrawl()
		select {
		case <-crawled:
			return crawlErr
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	sd.Add("close broker", time.Second, func(ctx context.Context) error {
		err := events.Close()
		select {
		case <-printed:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	sd.Add("close server", 5*time.Second, func(context.Context) error {
		srv.Close()
		return nil
	})
	err := sd.Run(ctx)

	<-crawled // the drain phases waited already unless they timed out
	tally.Elapsed = time.Since(start)
	tally.Retried = c.retried.Load()
	tally.Throttled = c.throttled.Load()
	tally.ServerThrottled = c.serverThrottled.Load()
	st := events.Stats()
	tally.Events = st.Published
	tally.EventsDropped = st.DroppedOldest
	return tally, err
}

// serveMonitor serves m's page at /debug/conc/ on addr.
func serveMonitor(addr string, m *conc.Monitor) (url string, stop func() error, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/debug/conc/", http.StripPrefix("/debug/conc", viz.Handler(m)))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/debug/conc/", srv.Close, nil
}

// printTable writes m's table to w every interval until the returned
// function is called, which writes it a last time.
func printTable(m *conc.Monitor, w io.Writer, interval time.Duration) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				_ = m.WriteText(w)
				fmt.Fprintln(w)
			case <-quit:
				_ = m.WriteText(w)
				return
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}
