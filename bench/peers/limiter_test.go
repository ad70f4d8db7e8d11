package peers

import (
	"strings"
	"testing"

	"github.com/concpatterns/conc"
	"github.com/concpatterns/conc/internal/benchkit"
	"go.uber.org/ratelimit"
	"golang.org/x/time/rate"
)

// BenchmarkLimiter repeats the workloads of conc's BenchmarkLimiter against
// golang.org/x/time/rate (xrate, Allow) and go.uber.org/ratelimit (uber,
// Take). One b.N iteration is one call; admitted/op is the fraction of calls
// admitted.
//
// uber's Take has no non-blocking form: it sleeps until its slot comes. It
// runs in the admit workloads only, with a rate of 1e9 a second so that it
// never sleeps; in the half workloads it would pace the callers instead of
// denying them, which measures something else.
func BenchmarkLimiter(b *testing.B) {
	// Each impl's loop calls the library directly, as user code would.
	type impl struct {
		name string
		loop func(perSecond float64, burst int) func(n int) int
	}
	concImpl := impl{"conc", func(r float64, b int) func(int) int {
		l := conc.NewLimiter(r, b)
		return func(n int) (ok int) {
			for range n {
				if l.Allow() {
					ok++
				}
			}
			return ok
		}
	}}
	xrate := impl{"xrate", func(r float64, b int) func(int) int {
		l := rate.NewLimiter(rate.Limit(r), b)
		return func(n int) (ok int) {
			for range n {
				if l.Allow() {
					ok++
				}
			}
			return ok
		}
	}}
	uber := impl{"uber", func(float64, int) func(int) int {
		l := ratelimit.New(1_000_000_000)
		return func(n int) int {
			for range n {
				l.Take()
			}
			return n
		}
	}}
	for _, w := range benchkit.LimiterWorkloads(func(r float64) func() bool { return conc.NewLimiter(r, 10).Allow }) {
		impls := []impl{concImpl, xrate, uber}
		if strings.HasPrefix(w.Name, "half") {
			impls = impls[:2] // uber cannot deny; see above
		}
		b.Run(w.Name, func(b *testing.B) {
			perSecond, burst := w.Rate()
			for _, im := range impls {
				b.Run(im.name, func(b *testing.B) {
					benchkit.RunAllowers(b, w.Goroutines, im.loop(perSecond, burst))
				})
			}
		})
	}
}
