package redislimit

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/concpatterns/conc/redislimit/internal/redistest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// An Example cannot skip itself, and this package's Example needs a real
	// redis-server. Without one (and outside CI, where a missing server is a
	// failure) only the tests run; they skip with the install hint.
	if redistest.Binary() == "" && os.Getenv("CI") != "true" {
		flag.Parse()
		if run := flag.Lookup("test.run"); run.Value.String() == "" {
			_ = run.Value.Set("^Test")
			fmt.Fprintln(os.Stderr, "redislimit: Example not run:", redistest.Missing)
		}
	}
	goleak.VerifyTestMain(m)
}
