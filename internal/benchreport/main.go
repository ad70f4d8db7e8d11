// Command benchreport turns `go test -bench` output into the report that
// `make bench` prints: one table grouped by primitive, conc beside the naive
// versions (or the peer libraries) with the speed-up, plus a CSV file and an
// SVG bar chart. It reads the benchmark output on standard input as it
// arrives, so it also shows progress while the suites run.
//
// Usage:
//
//	go test -run '^$' -bench . -benchmem -count 3 . | go run ./internal/benchreport -out results/bench
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

func main() {
	var (
		out    = flag.String("out", "", "write `prefix`.txt (raw output), prefix.csv and prefix.svg")
		title  = flag.String("title", "conc benchmarks", "report title")
		peers  = flag.Bool("peers", false, "compare with the best peer rather than the better naive version")
		suites = flag.Int("suites", 0, "number of top-level benchmarks expected, to show how far along the run is")
		sum    = flag.String("summary", "", "instead of reading standard input, draw the summary chart of -naive and -peerfile into `file.svg`")
		naive  = flag.String("naive", "", "with -summary: raw output of make bench (results/bench.txt)")
		peerf  = flag.String("peerfile", "", "with -summary: raw output of make bench-peers (results/peers.txt)")
	)
	flag.Parse()
	if *sum != "" {
		if err := summary(*sum, *title, *naive, *peerf); err != nil {
			fmt.Fprintln(os.Stderr, "benchreport:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*out, *title, *peers, *suites); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(out, title string, peers bool, suites int) error {
	var raw *bufio.Writer
	if out != "" {
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		f, err := os.Create(out + ".txt")
		if err != nil {
			return err
		}
		defer f.Close()
		raw = bufio.NewWriter(f)
		defer raw.Flush()
	}
	start := time.Now()
	suite := ""
	nth := 0 // how many suites have started
	of := ""
	if suites > 0 {
		of = fmt.Sprintf("/%d", suites)
	}
	failed := false
	// On a terminal one status line is rewritten in place; in a log (CI, a
	// pipe) a line per suite is printed instead of a flood of updates.
	tty := isTerminal(os.Stderr)
	progress := func(s sample, n int) {
		if strings.HasPrefix(s.suite, "FAIL:") {
			failed = true
			fmt.Fprintf(os.Stderr, "\n%s\n", s.suite)
			return
		}
		if s.suite != suite {
			if tty && suite != "" {
				fmt.Fprintln(os.Stderr)
			}
			suite = s.suite
			nth++
			if !tty {
				fmt.Fprintf(os.Stderr, "[%4.0fs] suite %d%s: %s (%d results so far)\n", time.Since(start).Seconds(), nth, of, suite, n-1)
			}
		}
		if tty {
			fmt.Fprintf(os.Stderr, "\r\033[K[%4.0fs] suite %d%s %-12s %4d results · %s/%s cpu=%d: %s",
				time.Since(start).Seconds(), nth, of, suite, n, s.workload, s.impl, s.cpu, fmtNs(s.nsOp))
		}
	}
	// A nil *bufio.Writer in an io.Writer is not a nil interface.
	var rawW io.Writer
	if raw != nil {
		rawW = raw
	}
	rs, err := collect(os.Stdin, rawW, progress)
	if tty {
		fmt.Fprintln(os.Stderr)
	}
	if err != nil {
		return err
	}
	if len(rs) == 0 {
		return fmt.Errorf("no benchmark results on standard input")
	}
	host, _ := os.Hostname()
	fmt.Printf("\n%s · %s · %d CPUs · %s · %s\n\n", runtime.Version(), runtime.GOARCH, runtime.NumCPU(), host, time.Now().UTC().Format("2006-01-02"))
	writeTable(os.Stdout, title, rs, peers)
	if out != "" {
		if err := writeFile(out+".csv", func(f *os.File) { writeCSV(f, rs) }); err != nil {
			return err
		}
		if err := writeFile(out+".svg", func(f *os.File) { writeChart(f, title, rs) }); err != nil {
			return err
		}
		fmt.Printf("\nraw output %s.txt · CSV %s.csv · chart %s.svg\n", out, out, out)
	}
	if failed {
		return fmt.Errorf("the benchmark run reported a failure (see above)")
	}
	return nil
}

func writeFile(name string, fill func(*os.File)) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	fill(f)
	return f.Close()
}

// isTerminal reports whether f is a character device, without a dependency
// on x/term: good enough to choose between a status line and plain lines.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// summary draws the summary chart from the raw output files of a naive run
// and a peers run; a file name left empty (or a file not there) leaves its
// panel empty.
func summary(out, title, naiveFile, peersFile string) error {
	read := func(name string) ([]result, error) {
		if name == "" {
			return nil, nil
		}
		f, err := os.Open(name)
		if os.IsNotExist(err) {
			fmt.Fprintf(os.Stderr, "benchreport: %s not found; its panel stays empty\n", name)
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return collect(f, nil, func(sample, int) {})
	}
	naive, err := read(naiveFile)
	if err != nil {
		return err
	}
	peers, err := read(peersFile)
	if err != nil {
		return err
	}
	if len(naive)+len(peers) == 0 {
		return fmt.Errorf("no benchmark results in %q or %q", naiveFile, peersFile)
	}
	return writeFile(out, func(f *os.File) { writeSummary(f, title, naive, peers) })
}
