package conc_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/concpatterns/conc"
)

// A per-client rate limit as HTTP middleware: each client IP may make 2
// requests at once and one more every second. Memory stays bounded however
// many clients come, and a client that is throttled stays throttled.
func ExampleKeyedLimiter() {
	limiter := conc.NewKeyedLimiter[string](1, 2, conc.MaxKeys(100_000))

	limit := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ip, _, err := net.SplitHostPort(r.RemoteAddr)
			if err != nil {
				ip = r.RemoteAddr
			}
			if !limiter.Allow(ip) {
				http.Error(w, "slow down", http.StatusTooManyRequests)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello")
	})
	handler := limit(hello)

	for _, client := range []string{"192.0.2.1", "192.0.2.1", "192.0.2.1", "198.51.100.7"} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = client + ":40000"
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		fmt.Println(client, rec.Code)
	}
	fmt.Println("clients remembered:", limiter.Len())
	// Output:
	// 192.0.2.1 200
	// 192.0.2.1 200
	// 192.0.2.1 429
	// 198.51.100.7 200
	// clients remembered: 2
}

// Wait in a loop paces work to the limiter's rate: here 1000 jobs a second
// with no bursts, stopping when the context ends.
func ExampleLimiter_Wait() {
	limiter := conc.NewLimiter(1000, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()

	start := time.Now()
	for job := range 5 {
		if err := limiter.Wait(ctx); err != nil {
			fmt.Println("stopped:", err)
			return
		}
		_ = job // do the job
	}
	fmt.Println("5 jobs paced over at least 4ms:", time.Since(start) >= 4*time.Millisecond)
	// Output:
	// 5 jobs paced over at least 4ms: true
}

// Allow drops what exceeds the rate; Reserve tells how long to wait instead.
func ExampleLimiter_Reserve() {
	limiter := conc.NewLimiter(conc.Every(time.Second), 1, conc.LimiterCounts())
	fmt.Println(limiter.Allow(), limiter.Allow())

	r := limiter.Reserve()
	fmt.Println(r.OK(), r.Delay().Round(time.Second))
	r.Cancel() // not going to act after all: give the token back

	// With LimiterCounts every call counts once; a cancelled reservation
	// stays allowed.
	st := limiter.Stats()
	fmt.Println("allowed", st.Allowed, "denied", st.Denied)
	// Output:
	// true false
	// true 1s
	// allowed 2 denied 1
}
