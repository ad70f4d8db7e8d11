package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// sample is one result line of `go test -bench`.
type sample struct {
	suite    string // "Pipeline" for BenchmarkPipeline/...
	workload string
	impl     string
	cpu      int
	nsOp     float64
	bytesOp  float64
	allocsOp float64
	// extra holds custom metrics (b.ReportMetric), such as admitted/op:
	// they say how much work an implementation did, so that one doing less
	// is not taken for one doing it faster.
	extra map[string]float64
}

// key identifies the cell a sample belongs to; repeated counts of one
// benchmark share a key and are reduced to their median.
type key struct {
	suite, workload, impl string
	cpu                   int
}

// result is the median of every sample that shares a key.
type result struct {
	key
	nsOp, bytesOp, allocsOp float64
	extra                   map[string]float64
	runs                    int
}

// cpuSuffix is the "-N" that the testing package appends to a benchmark's
// name when GOMAXPROCS is not 1.
var cpuSuffix = regexp.MustCompile(`-(\d+)$`)

// parseLine reads one line of benchmark output. ok is false for every line
// that is not a result (headers, PASS, progress from the test binary).
func parseLine(line string) (s sample, ok bool) {
	fields := strings.Fields(line)
	if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
		return s, false
	}
	name := strings.TrimPrefix(fields[0], "Benchmark")
	s.cpu = 1
	if m := cpuSuffix.FindStringSubmatch(name); m != nil {
		s.cpu, _ = strconv.Atoi(m[1])
		name = strings.TrimSuffix(name, m[0])
	}
	parts := strings.Split(name, "/")
	switch len(parts) {
	case 1:
		s.suite, s.workload, s.impl = parts[0], "-", "conc"
	case 2:
		s.suite, s.workload, s.impl = parts[0], "-", parts[1]
	default:
		s.suite = parts[0]
		s.workload = strings.Join(parts[1:len(parts)-1], "/")
		s.impl = parts[len(parts)-1]
	}
	// fields[1] is the iteration count; then value-unit pairs follow.
	if _, err := strconv.Atoi(fields[1]); err != nil {
		return s, false
	}
	seen := false
	for i := 2; i+1 < len(fields); i += 2 {
		v, err := strconv.ParseFloat(fields[i], 64)
		if err != nil {
			continue
		}
		switch fields[i+1] {
		case "ns/op":
			s.nsOp, seen = v, true
		case "B/op":
			s.bytesOp = v
		case "allocs/op":
			s.allocsOp = v
		case "MB/s":
		default:
			if s.extra == nil {
				s.extra = map[string]float64{}
			}
			s.extra[fields[i+1]] = v
		}
	}
	return s, seen
}

// collect reads benchmark output from r, copies it to raw, reports progress
// through progress, and returns the medians in the order benchmarks first
// appeared.
func collect(r io.Reader, raw io.Writer, progress func(s sample, n int)) ([]result, error) {
	samples := map[key][]sample{}
	var order []key
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if raw != nil {
			fmt.Fprintln(raw, line)
		}
		s, ok := parseLine(line)
		if !ok {
			if strings.HasPrefix(line, "--- FAIL") || strings.HasPrefix(line, "FAIL") || strings.HasPrefix(line, "panic:") {
				progress(sample{suite: "FAIL: " + line}, n)
			}
			continue
		}
		k := key{s.suite, s.workload, s.impl, s.cpu}
		if _, ok := samples[k]; !ok {
			order = append(order, k)
		}
		samples[k] = append(samples[k], s)
		n++
		progress(s, n)
	}
	out := make([]result, 0, len(order))
	for _, k := range order {
		ss := samples[k]
		r := result{
			key:      k,
			nsOp:     median(ss, func(s sample) float64 { return s.nsOp }),
			bytesOp:  median(ss, func(s sample) float64 { return s.bytesOp }),
			allocsOp: median(ss, func(s sample) float64 { return s.allocsOp }),
			runs:     len(ss),
		}
		for unit := range ss[0].extra {
			if r.extra == nil {
				r.extra = map[string]float64{}
			}
			r.extra[unit] = median(ss, func(s sample) float64 { return s.extra[unit] })
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// median of f over ss; the mean of the middle two for an even count.
func median(ss []sample, f func(sample) float64) float64 {
	vs := make([]float64, len(ss))
	for i, s := range ss {
		vs[i] = f(s)
	}
	slices.Sort(vs)
	m := len(vs) / 2
	if len(vs)%2 == 1 {
		return vs[m]
	}
	return (vs[m-1] + vs[m]) / 2
}
