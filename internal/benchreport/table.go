package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

// class sorts implementations into the columns of the report.
type class int

const (
	classConc  class = iota // this package: "conc" or "conc-<variant>"
	classMutex              // the naive mutex version
	classChan               // the naive unbuffered-channel version
	classOther              // any further baseline or peer library
	classFloor              // a lower bound, not a competitor: "direct", "handordered", "clock"
)

func classify(impl string) class {
	switch {
	case impl == "conc" || strings.HasPrefix(impl, "conc-"):
		return classConc
	case impl == "mutex" || strings.HasPrefix(impl, "mutex-"):
		return classMutex
	case impl == "chan" || strings.HasPrefix(impl, "chan-"):
		return classChan
	case impl == "direct" || strings.HasPrefix(impl, "direct-") || impl == "handordered" || impl == "clock":
		return classFloor
	}
	return classOther
}

// group is one (suite, workload, cpu) cell of the report: every
// implementation measured on the same work.
type group struct {
	suite, workload string
	cpu             int
	impls           map[string]result
}

// suiteGroups orders results into suites (in order of first appearance) and,
// within a suite, workloads and cpu counts.
func suiteGroups(rs []result) (suites []string, groups map[string][]*group) {
	groups = map[string][]*group{}
	index := map[key]*group{}
	for _, r := range rs {
		if _, ok := groups[r.suite]; !ok {
			suites = append(suites, r.suite)
		}
		gk := key{suite: r.suite, workload: r.workload, cpu: r.cpu}
		g := index[gk]
		if g == nil {
			g = &group{suite: r.suite, workload: r.workload, cpu: r.cpu, impls: map[string]result{}}
			index[gk] = g
			groups[r.suite] = append(groups[r.suite], g)
		}
		g.impls[r.impl] = r
	}
	for _, s := range suites {
		// Keep workloads in first-seen order, but put the cpu counts of one
		// workload next to each other.
		gs := groups[s]
		first := map[string]int{}
		for i, g := range gs {
			if _, ok := first[g.workload]; !ok {
				first[g.workload] = i
			}
		}
		slices.SortStableFunc(gs, func(a, b *group) int {
			if d := first[a.workload] - first[b.workload]; d != 0 {
				return d
			}
			return a.cpu - b.cpu
		})
	}
	return suites, groups
}

// columns lists the non-conc implementations of a suite in column order:
// mutex, chan, then the others alphabetically, floors last.
func columns(gs []*group) []string {
	set := map[string]bool{}
	for _, g := range gs {
		for impl := range g.impls {
			if classify(impl) != classConc {
				set[impl] = true
			}
		}
	}
	cols := make([]string, 0, len(set))
	for impl := range set {
		cols = append(cols, impl)
	}
	slices.SortFunc(cols, func(a, b string) int {
		if d := int(classify(a)) - int(classify(b)); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	return cols
}

// concImpls lists the conc variants measured in g, "conc" first.
func concImpls(g *group) []string {
	var out []string
	for impl := range g.impls {
		if classify(impl) == classConc {
			out = append(out, impl)
		}
	}
	slices.Sort(out)
	return out
}

// best returns the fastest competitor of conc in g (every class but conc
// and floor) that did the same work, or ok false when there is none.
func best(g *group, conc result) (r result, ok bool) {
	for impl, x := range g.impls {
		c := classify(impl)
		if c == classConc || c == classFloor || !sameWork(conc, x) {
			continue
		}
		if !ok || x.nsOp < r.nsOp {
			r, ok = x, true
		}
	}
	return r, ok
}

// sameWork reports whether a and b agree, within 10%, on every custom
// metric both report (admitted/op, drops/op, ...). A limiter that denies
// every call is cheap, but it is not a faster limiter.
func sameWork(a, b result) bool {
	for unit, av := range a.extra {
		bv, ok := b.extra[unit]
		if !ok {
			continue
		}
		if d := math.Abs(av - bv); d > 0.01 && d > 0.1*math.Max(math.Abs(av), math.Abs(bv)) {
			return false
		}
	}
	return true
}

// writeTable prints the report: one block per suite, one row per conc
// variant and workload, competitors as columns.
func writeTable(w io.Writer, title string, rs []result, peers bool) {
	suites, groups := suiteGroups(rs)
	vs := "better naive"
	if peers {
		vs = "best peer"
	}
	fmt.Fprintf(w, "%s — per item/job/call: time (median) · allocations; speed-up = %s ÷ conc\n", title, vs)
	different := false
	for _, s := range suites {
		gs := groups[s]
		cols := columns(gs)
		fmt.Fprintf(w, "\n%s\n", s)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		hdr := []string{"  workload", "cpu", "conc", "time", "allocs"}
		for _, c := range cols {
			hdr = append(hdr, header(c, peers))
		}
		hdr = append(hdr, "speed-up")
		fmt.Fprintln(tw, strings.Join(hdr, "\t"))
		for _, g := range gs {
			for _, ci := range concImpls(g) {
				r := g.impls[ci]
				row := []string{"  " + g.workload, fmt.Sprint(g.cpu), ci, fmtNs(r.nsOp), fmtAllocs(r.allocsOp)}
				for _, c := range cols {
					if x, ok := g.impls[c]; ok {
						cell := fmtNs(x.nsOp) + " · " + fmtAllocs(x.allocsOp)
						if !sameWork(r, x) {
							cell += " ≠"
							different = true
						}
						row = append(row, cell)
					} else {
						row = append(row, "—")
					}
				}
				if b, ok := best(g, r); ok && r.nsOp > 0 {
					row = append(row, fmt.Sprintf("%.1f× vs %s", b.nsOp/r.nsOp, b.impl))
				} else {
					row = append(row, "—")
				}
				fmt.Fprintln(tw, strings.Join(row, "\t"))
			}
		}
		tw.Flush()
	}
	if different {
		fmt.Fprintln(w, "\n≠ did different work from conc (a custom metric such as admitted/op differs by more than 10%): shown, not counted in the speed-up")
	}
}

// header names a competitor column for a reader who has not seen the code.
func header(impl string, peers bool) string {
	switch classify(impl) {
	case classMutex, classChan:
		// The name itself, so that variants ("chan-buffered") keep
		// columns of their own names.
		return "naive " + impl
	case classFloor:
		return impl + " (floor)"
	}
	if peers {
		return impl
	}
	return "naive " + impl
}

// fmtNs prints a duration in ns with three significant digits, switching to
// µs and ms where that reads better.
func fmtNs(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.3g ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.3g µs", ns/1e3)
	case ns >= 100:
		return fmt.Sprintf("%.0f ns", ns)
	}
	return fmt.Sprintf("%.3g ns", ns)
}

func fmtAllocs(a float64) string {
	if a == math.Trunc(a) {
		return fmt.Sprintf("%.0f", a)
	}
	return fmt.Sprintf("%.2f", a)
}
