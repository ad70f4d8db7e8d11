package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const sampleOutput = `goos: linux
goarch: amd64
pkg: github.com/concpatterns/conc
BenchmarkPipeline/cheap3/conc-collect     	 1000000	        10.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkPipeline/cheap3/conc-collect     	 1000000	        12.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkPipeline/cheap3/conc-collect     	 1000000	        50.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkPipeline/cheap3/chan             	  100000	       400 ns/op	      16 B/op	       2 allocs/op
BenchmarkPipeline/cheap3/mutex            	  100000	       200 ns/op	       8 B/op	       1 allocs/op
BenchmarkPipeline/cheap3/conc-collect-2   	 1000000	         8.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkPipeline/cheap3/mutex-2          	  100000	       300 ns/op	       8 B/op	       1 allocs/op
BenchmarkRetry/first-success/conc         	 1000000	         3.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkRetry/first-success/direct       	 1000000	         1.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkRetry/first-success/loop         	 1000000	         2.0 ns/op	       0 B/op	       0 allocs/op
PASS
ok  	github.com/concpatterns/conc	1.234s
`

func TestParseLineSplitsNameAndCPU(t *testing.T) {
	s, ok := parseLine("BenchmarkBroker/subs=10/conc-2   \t 5000\t 231 ns/op\t 0 B/op\t 0 allocs/op")
	require.True(t, ok)
	assert.Equal(t, sample{suite: "Broker", workload: "subs=10", impl: "conc", cpu: 2, nsOp: 231}, s)

	s, ok = parseLine("BenchmarkPipeline/1us-w2/conc-ordered \t 5000\t 1.5 ns/op")
	require.True(t, ok)
	assert.Equal(t, "1us-w2", s.workload)
	assert.Equal(t, "conc-ordered", s.impl)
	assert.Equal(t, 1, s.cpu)

	for _, line := range []string{"PASS", "goos: linux", "BenchmarkX \t--- FAIL", "ok  \tpkg\t1s"} {
		_, ok := parseLine(line)
		assert.False(t, ok, line)
	}
}

func TestCollectTakesMediansPerCell(t *testing.T) {
	var raw bytes.Buffer
	var seen int
	rs, err := collect(strings.NewReader(sampleOutput), &raw, func(sample, int) { seen++ })
	require.NoError(t, err)
	assert.Equal(t, sampleOutput, raw.String(), "raw output is kept verbatim")
	assert.Equal(t, 10, seen)
	require.Len(t, rs, 8)
	assert.Equal(t, key{"Pipeline", "cheap3", "conc-collect", 1}, rs[0].key)
	assert.Equal(t, 12.0, rs[0].nsOp, "median of 10, 12, 50")
	assert.Equal(t, 3, rs[0].runs)
}

func TestTableShowsSpeedUpOverBetterNaive(t *testing.T) {
	rs, err := collect(strings.NewReader(sampleOutput), nil, func(sample, int) {})
	require.NoError(t, err)
	var buf bytes.Buffer
	writeTable(&buf, "t", rs, false)
	out := buf.String()
	// cpu=1: better naive is mutex at 200 ns, conc 12 ns.
	assert.Contains(t, out, "16.7× vs mutex")
	// cpu=2: only mutex measured: 300 / 8.
	assert.Contains(t, out, "37.5× vs mutex")
	// The floor is shown but never counted as a competitor.
	assert.Contains(t, out, "direct (floor)")
	assert.Contains(t, out, "0.7× vs loop")
}

func TestChartIsWellFormedSVG(t *testing.T) {
	rs, err := collect(strings.NewReader(sampleOutput), nil, func(sample, int) {})
	require.NoError(t, err)
	var buf bytes.Buffer
	writeChart(&buf, "a <title> & more", rs)
	d := xml.NewDecoder(&buf)
	rects := 0
	for {
		tok, err := d.Token()
		if err != nil {
			require.EqualError(t, err, "EOF")
			break
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			rects++
		}
	}
	// Background plus one bar per impl at the highest cpu of each workload:
	// Pipeline/cheap3 at cpu=2 has 2, Retry at cpu=1 has 3.
	assert.Equal(t, 1+2+3, rects)
}

func TestCSVHasOneRowPerCell(t *testing.T) {
	rs, err := collect(strings.NewReader(sampleOutput), nil, func(sample, int) {})
	require.NoError(t, err)
	var buf bytes.Buffer
	writeCSV(&buf, rs)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	assert.Len(t, lines, 1+len(rs))
	assert.Equal(t, "Pipeline,cheap3,conc-collect,1,12,0,0,3", lines[1])
}

func TestCompetitorDoingLessWorkIsNotCountedInSpeedUp(t *testing.T) {
	const out = `BenchmarkLimiter/admit/conc 	1000	30.0 ns/op	1.000 admitted/op	0 B/op	0 allocs/op
BenchmarkLimiter/admit/mutex 	1000	60.0 ns/op	1.000 admitted/op	0 B/op	0 allocs/op
BenchmarkLimiter/admit/chan 	1000	4.0 ns/op	0.010 admitted/op	0 B/op	0 allocs/op
`
	rs, err := collect(strings.NewReader(out), nil, func(sample, int) {})
	require.NoError(t, err)
	assert.Equal(t, map[string]float64{"admitted/op": 0.01}, rs[2].extra)
	var buf bytes.Buffer
	writeTable(&buf, "t", rs, false)
	assert.Contains(t, buf.String(), "2.0× vs mutex")
	assert.Contains(t, buf.String(), "4 ns · 0 ≠")
}

func TestSummarySpeedupsUseConcOrItsFastestVariantAndTheBestCompetitor(t *testing.T) {
	rs, err := collect(strings.NewReader(sampleOutput), nil, func(sample, int) {})
	require.NoError(t, err)
	suites, sp := suiteSpeedups(rs)
	assert.Equal(t, []string{"Pipeline", "Retry"}, suites)
	// cheap3 has no "conc" impl: its median conc-collect (12 ns) against
	// the faster naive version (mutex, 200 ns); at cpu=2, 300/8.
	assert.InDeltaSlice(t, []float64{200.0 / 12}, sp["Pipeline"][1], 1e-9)
	assert.InDeltaSlice(t, []float64{300.0 / 8}, sp["Pipeline"][2], 1e-9)
	// The floor (direct) is not a competitor: loop is, and conc is slower.
	assert.InDeltaSlice(t, []float64{2.0 / 3}, sp["Retry"][1], 1e-9)
}

func TestSummaryChartIsWellFormedAndNamesEveryPrimitive(t *testing.T) {
	rs, err := collect(strings.NewReader(sampleOutput), nil, func(sample, int) {})
	require.NoError(t, err)
	var buf bytes.Buffer
	monitor, err := collect(strings.NewReader("BenchmarkMonitor/cheap3/off 100 5 ns/op\nBenchmarkMonitor/cheap3/on 100 6 ns/op\n"), nil, func(sample, int) {})
	require.NoError(t, err)
	writeSummary(&buf, "summary", append(rs, monitor...), nil)
	d := xml.NewDecoder(&buf)
	texts := ""
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		if c, ok := tok.(xml.CharData); ok {
			texts += string(c) + "\n"
		}
	}
	for _, want := range []string{"Pipeline", "Retry", "no peer measured", "cpu=1", "cpu=2", "1×"} {
		assert.Contains(t, texts, want)
	}
	assert.NotContains(t, texts, "Monitor", "a suite with no conc row compares nothing")
}
