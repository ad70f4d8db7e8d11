package httplimit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/concpatterns/conc"
	"github.com/concpatterns/conc/httplimit"
)

// Limit each client address to 5 requests a second with bursts of 10.
func Example() {
	lim := httplimit.New(httplimit.Keyed(conc.NewKeyedLimiter[string](5, 10)))
	api := lim.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello")
	}))

	var last *httptest.ResponseRecorder
	for range 11 {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "192.0.2.1:4711"
		last = httptest.NewRecorder()
		api.ServeHTTP(last, r)
	}
	fmt.Println(last.Code, last.Header().Get("Retry-After"))
	fmt.Println(last.Header().Get("RateLimit-Policy"))
	// Output:
	// 429 1
	// "default";q=10;w=2
}
