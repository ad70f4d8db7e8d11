package main

import (
	"encoding/csv"
	"io"
	"strconv"
)

// writeCSV writes one row per (suite, workload, impl, cpu) with the medians,
// for whoever wants to plot or diff the results with other tools.
func writeCSV(w io.Writer, rs []result) {
	cw := csv.NewWriter(w)
	cw.Write([]string{"suite", "workload", "impl", "cpu", "ns_per_op", "bytes_per_op", "allocs_per_op", "runs"})
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	for _, r := range rs {
		cw.Write([]string{r.suite, r.workload, r.impl, strconv.Itoa(r.cpu), f(r.nsOp), f(r.bytesOp), f(r.allocsOp), strconv.Itoa(r.runs)})
	}
	cw.Flush()
}
