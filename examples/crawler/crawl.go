package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/concpatterns/conc"
)

// outcome is how the crawl of one URL ended; every URL handed to the
// pipeline ends in exactly one.
type outcome int

const (
	fetched  outcome = iota // a 200, possibly after retries
	rejected                // the host's breaker was open: not even tried
	failed                  // retries exhausted, or a permanent error
	canceled                // the crawl was cancelled while it was in flight
)

var outcomeNames = [...]string{"fetched", "rejected", "failed", "canceled"}

func (o outcome) String() string { return outcomeNames[o] }

// event is what the crawler publishes for each URL.
type event struct {
	Path    string
	Outcome outcome
	Err     error
}

// target is one URL: its host decides the limiter and breaker it goes through.
type target struct {
	host string
	path string
}

// crawler holds what the fetches share: one limiter for every host, one
// breaker per host, one retry policy.
type crawler struct {
	base     string
	client   *http.Client
	hosts    []string
	limit    *conc.KeyedLimiter[string]
	breakers map[string]*conc.Breaker
	retry    *conc.RetryPolicy
	workers  int
	monitor  *conc.Monitor // nil unless -serve or -table

	intake          atomic.Bool // false once shutdown stops handing out URLs
	retried         atomic.Int64
	throttled       atomic.Int64 // fetches that waited for the crawler's own limiter
	serverThrottled atomic.Int64 // 429s from the server
}

// statusError is a non-200 answer.
type statusError struct{ code int }

func (e *statusError) Error() string { return "HTTP " + strconv.Itoa(e.code) }

func newCrawler(base string, hosts []string, cfg config) *crawler {
	c := &crawler{
		base:     base,
		client:   &http.Client{Timeout: 2 * time.Second},
		hosts:    hosts,
		limit:    conc.NewKeyedLimiter[string](cfg.PerHost, max(1, int(cfg.PerHost/20))),
		breakers: map[string]*conc.Breaker{},
		workers:  cfg.Workers,
		monitor:  cfg.Monitor,
	}
	c.intake.Store(true)
	for _, h := range hosts {
		c.breakers[h] = conc.NewBreaker(
			conc.ConsecutiveFailures(5),
			conc.Cooldown(time.Minute), // longer than a crawl: a dead host stays dead
			// Being told to slow down says nothing about the host's health.
			conc.IsFailure(func(err error) bool {
				var se *statusError
				return err != nil && !(errors.As(err, &se) && se.code == http.StatusTooManyRequests)
			}),
		)
	}
	c.retry = conc.NewRetryPolicy(
		conc.RetryAttempts(4),
		conc.RetryBaseDelay(2*time.Millisecond),
		conc.RetryMaxDelay(50*time.Millisecond),
		conc.OnRetry(func(int, error, time.Duration) { c.retried.Add(1) }),
	)
	return c
}

func (c *crawler) stopIntake() { c.intake.Store(false) }

// crawl runs n URLs through the pipeline and tallies the outcomes. URLs it
// never handed out because intake stopped are counted as not started.
func (c *crawler) crawl(ctx context.Context, n int, events *conc.Broker[event]) (summary, error) {
	sum := summary{Total: int64(n)}
	urls := func(yield func(target) bool) {
		for i := range n {
			if !c.intake.Load() {
				return
			}
			h := c.hosts[i%len(c.hosts)]
			sum.Started++
			if !yield(target{host: h, path: "/" + h + "/" + strconv.Itoa(i)}) {
				return
			}
		}
	}
	fetch := conc.Map(c.fetch, conc.Workers(c.workers), conc.Named("fetch"))
	if c.monitor != nil {
		fetch = conc.Monitored(c.monitor, "crawl", fetch)
	}
	var err error
	for ev, e := range conc.All(ctx, fetch, urls) {
		if e != nil {
			err = e
			break
		}
		switch ev.Outcome {
		case fetched:
			sum.Fetched++
		case rejected:
			sum.Rejected++
		case failed:
			sum.Failed++
		case canceled:
			sum.Canceled++
		}
		// Progress events are best effort (DropOldest): the tally above,
		// not the subscriber, is the record.
		events.Publish(ctx, "crawl."+ev.Outcome.String(), ev)
	}
	if err != nil && ctx.Err() != nil {
		// A cancelled pipeline drops what was between its stages; those
		// URLs were started and cut short.
		sum.Canceled = sum.Started - sum.Fetched - sum.Rejected - sum.Failed
		err = nil
	}
	sum.NotStarted = sum.Total - sum.Started
	return sum, err
}

// fetch crawls one URL: limiter, breaker and retry around one GET. Its
// outcome is data, never an error, so that one bad URL does not stop the
// pipeline.
func (c *crawler) fetch(ctx context.Context, t target) (event, error) {
	br := c.breakers[t.host]
	err := c.retry.Do(ctx, func(ctx context.Context) error {
		if !c.limit.Allow(t.host) {
			c.throttled.Add(1)
			if err := c.limit.Wait(ctx, t.host); err != nil {
				return err
			}
		}
		return br.Execute(ctx, func(ctx context.Context) error { return c.get(ctx, t.path) })
	})
	ev := event{Path: t.path, Err: err}
	switch {
	case err == nil:
		ev.Outcome = fetched
	case errors.Is(err, conc.ErrOpen):
		ev.Outcome = rejected
	case ctx.Err() != nil:
		ev.Outcome = canceled
	default:
		ev.Outcome = failed
	}
	return ev, nil
}

// get does one request and turns the status into the error Retry and the
// breaker understand.
func (c *crawler) get(ctx context.Context, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return conc.Permanent(err)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests:
		c.serverThrottled.Add(1)
		ms, _ := strconv.Atoi(resp.Header.Get("Retry-After-Ms"))
		return conc.RetryAfter(&statusError{resp.StatusCode}, time.Duration(ms)*time.Millisecond)
	case resp.StatusCode >= 500:
		return &statusError{resp.StatusCode}
	default:
		return conc.Permanent(&statusError{resp.StatusCode})
	}
}

// summary is the crawl's account: every URL is in exactly one of
// NotStarted, Fetched, Rejected, Failed and Canceled.
type summary struct {
	Total, Started, NotStarted          int64
	Fetched, Rejected, Failed, Canceled int64
	Retried, Throttled, ServerThrottled int64
	Events, EventsDropped               uint64
	Elapsed                             time.Duration
}

// Lost is the number of URLs the summary cannot account for; it must be 0.
func (s summary) Lost() int64 {
	return s.Total - s.NotStarted - s.Fetched - s.Rejected - s.Failed - s.Canceled
}

func (s summary) String() string {
	return fmt.Sprintf("urls %d: fetched %d · rejected by breaker %d · failed %d · canceled %d · not started %d\n"+
		"retries %d · throttled by own limiter %d · 429s from server %d · progress events %d (%d dropped for a slow display) · elapsed %v · lost %d",
		s.Total, s.Fetched, s.Rejected, s.Failed, s.Canceled, s.NotStarted,
		s.Retried, s.Throttled, s.ServerThrottled, s.Events, s.EventsDropped, s.Elapsed.Round(time.Millisecond), s.Lost())
}

// drawProgress renders one status line from the progress events until the
// subscription closes.
func drawProgress(w io.Writer, events <-chan event, total int) {
	var counts [len(outcomeNames)]int
	seen := 0
	for ev := range events {
		counts[ev.Outcome]++
		seen++
		if seen%100 == 0 || seen == total {
			fmt.Fprintf(w, "\rprogress: %d/%d events · fetched %d · rejected %d · failed %d ", seen, total,
				counts[fetched], counts[rejected], counts[failed])
		}
	}
	fmt.Fprintln(w)
}
