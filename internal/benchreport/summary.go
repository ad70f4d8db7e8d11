package main

import (
	"fmt"
	"html"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
)

// The summary chart: one row per primitive (suite), two panels side by
// side: conc's speed-up over the fastest naive version and over the fastest
// peer library. A mark is the geometric mean over the primitive's
// workloads at one cpu count, the line through it the range from the
// worst workload to the best. Drawn for the README, at its width.
const (
	sumWidth     = 800
	sumLabel     = 120 // primitive names
	sumGap       = 40  // between the two panels
	sumRow       = 22
	sumTop       = 122 // title, notes, legend, panel titles and axis labels
	sumRight     = 12
	sumMarkerGap = 4 // vertical offset of the cpu=1 and cpu=2 marks from the row's middle
)

// speedups is one panel cell: per cpu count, the speed-up of every
// workload of one suite.
type speedups map[int][]float64

// suiteSpeedups computes, for every suite of rs, conc's speed-up over the
// best competitor (best: every impl but conc and the floors, doing the
// same work) per workload and cpu count. The conc side is the "conc" impl
// when the workload has one, otherwise its fastest conc variant.
func suiteSpeedups(rs []result) (suites []string, out map[string]speedups) {
	suites, groups := suiteGroups(rs)
	out = map[string]speedups{}
	for _, s := range suites {
		sp := speedups{}
		for _, g := range groups[s] {
			c, ok := g.impls["conc"]
			if !ok {
				for _, impl := range concImpls(g) {
					if r := g.impls[impl]; r.nsOp > 0 && (!ok || r.nsOp < c.nsOp) {
						c, ok = r, true
					}
				}
			}
			if !ok || c.nsOp <= 0 {
				continue
			}
			if b, ok := best(g, c); ok && b.nsOp > 0 {
				sp[g.cpu] = append(sp[g.cpu], b.nsOp/c.nsOp)
			}
		}
		out[s] = sp
	}
	return suites, out
}

func geomean(xs []float64) float64 {
	sum := 0.0
	for _, x := range xs {
		sum += math.Log(x)
	}
	return math.Exp(sum / float64(len(xs)))
}

// writeSummary draws the summary chart of a naive run and a peers run
// (either may be empty).
func writeSummary(w io.Writer, title string, naive, peers []result) {
	order, vsNaive := suiteSpeedups(naive)
	porder, vsPeer := suiteSpeedups(peers)
	for _, s := range porder {
		if _, ok := vsNaive[s]; !ok {
			order = append(order, s)
		}
	}
	// A suite without a conc row (an overhead measurement such as
	// Monitor's on/off) compares nothing: it gets no row.
	order = slices.DeleteFunc(order, func(s string) bool {
		return len(vsNaive[s]) == 0 && len(vsPeer[s]) == 0
	})
	cpus := map[int]bool{}
	lo, hi := 1.0, 1.0
	for _, m := range []map[string]speedups{vsNaive, vsPeer} {
		for _, sp := range m {
			for cpu, xs := range sp {
				cpus[cpu] = true
				for _, x := range xs {
					lo, hi = min(lo, x), max(hi, x)
				}
			}
		}
	}
	cpuList := slices.Sorted(maps.Keys(cpus))
	// The axis spans whole steps of the 1-3-10 ladder around the data;
	// the 3s are labelled only when the axis spans at most two decades.
	ticks := []float64{}
	for d := -3; d <= 3; d++ {
		for _, m := range []float64{1, 3} {
			ticks = append(ticks, m*math.Pow(10, float64(d)))
		}
	}
	alo, ahi := 1.0, 1.0
	for _, t := range ticks {
		if t <= lo {
			alo = t
		}
	}
	for i := len(ticks) - 1; i >= 0; i-- {
		if ticks[i] >= hi {
			ahi = ticks[i]
		}
	}
	if ahi <= alo {
		ahi = alo * 10
	}
	panelW := float64(sumWidth-sumLabel-sumGap-sumRight) / 2
	x0 := []float64{sumLabel, sumLabel + panelW + sumGap}
	xOf := func(panel int, v float64) float64 {
		return x0[panel] + panelW*(math.Log(v)-math.Log(alo))/(math.Log(ahi)-math.Log(alo))
	}
	height := sumTop + len(order)*sumRow + 40
	colors := []string{"#1f77b4", "#e6550d", "#2ca02c", "#9467bd"}

	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		sumWidth, height, sumWidth, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(w, `<text x="10" y="20" font-size="15" font-weight="bold">%s</text>`+"\n", html.EscapeString(title))
	fmt.Fprintf(w, `<text x="10" y="37" fill="#444">How many times faster conc is, per primitive (log scale; right of 1× conc is faster). Mark: geometric mean</text>`+"\n")
	fmt.Fprintf(w, `<text x="10" y="52" fill="#444">over the primitive's workloads; line: worst to best workload. Competitor: the fastest one measured on the same work.</text>`+"\n")
	// Legend.
	lx := 10.0
	for i, cpu := range cpuList {
		c := colors[i%len(colors)]
		fmt.Fprintf(w, `<circle cx="%.1f" cy="68" r="4.5" fill="%s"/>`+"\n", lx+5, c)
		fmt.Fprintf(w, `<text x="%.1f" y="72">cpu=%d (GOMAXPROCS=%d)</text>`+"\n", lx+14, cpu, cpu)
		lx += 190
	}
	axisY := float64(sumTop - 8)
	bottom := float64(sumTop + len(order)*sumRow)
	for p, name := range []string{"vs the fastest naive version (mutex, channel, other)", "vs the fastest peer library"} {
		fmt.Fprintf(w, `<text x="%.1f" y="%d" font-weight="bold" text-anchor="middle">%s</text>`+"\n", x0[p]+panelW/2, sumTop-34, name)
		if 1 > alo && 1 < ahi {
			fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="end" fill="#888" font-size="10">← conc slower</text>`+"\n", xOf(p, 1)-4, bottom+12)
			fmt.Fprintf(w, `<text x="%.1f" y="%.1f" fill="#888" font-size="10">conc faster →</text>`+"\n", xOf(p, 1)+4, bottom+12)
		}
		for _, t := range ticks {
			if t < alo || t > ahi {
				continue
			}
			x := xOf(p, t)
			stroke := "#ddd"
			if t == 1 {
				stroke = "#555"
			}
			fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", x, axisY, x, bottom, stroke)
			if decade := math.Abs(math.Log10(t)-math.Round(math.Log10(t))) < 1e-9; decade || ahi/alo <= 100 {
				fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555" font-size="11">%s</text>`+"\n", x, axisY-3, fmtTimes(t))
			}
		}
	}
	for i, s := range order {
		top := float64(sumTop + i*sumRow)
		mid := top + sumRow/2
		if i%2 == 0 {
			fmt.Fprintf(w, `<rect x="0" y="%.1f" width="%d" height="%d" fill="#f4f4f4" fill-opacity="0.7"/>`+"\n", top, sumWidth, sumRow)
		}
		fmt.Fprintf(w, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", sumLabel-8, mid+4, html.EscapeString(s))
		for p, m := range []map[string]speedups{vsNaive, vsPeer} {
			sp := m[s]
			if len(sp) == 0 {
				fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#999" font-size="11">%s</text>`+"\n",
					x0[p]+panelW*0.72, mid+4, []string{"no naive run", "no peer measured"}[p])
				continue
			}
			for ci, cpu := range cpuList {
				xs := sp[cpu]
				if len(xs) == 0 {
					continue
				}
				y := mid - sumMarkerGap + float64(ci)*2*sumMarkerGap/float64(max(len(cpuList)-1, 1))
				c := colors[ci%len(colors)]
				mn, mx := xs[0], xs[0]
				for _, x := range xs {
					mn, mx = min(mn, x), max(mx, x)
				}
				g := geomean(xs)
				fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5" stroke-opacity="0.6"/>`+"\n",
					xOf(p, mn), y, xOf(p, mx), y, c)
				fmt.Fprintf(w, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%s, cpu=%d: %s (%d workloads, %s to %s)</title></circle>`+"\n",
					xOf(p, g), y, c, html.EscapeString(s), cpu, fmtTimes(g), len(xs), fmtTimes(mn), fmtTimes(mx))
			}
		}
	}
	fmt.Fprintf(w, `<text x="10" y="%.1f" fill="#777" font-size="11">Per-workload figures: the tables in README.md (make bench, make bench-peers); every bar: docs/bench.svg.</text>`+"\n", bottom+30)
	fmt.Fprintln(w, `</svg>`)
}

// fmtTimes prints a ratio as "3×", "0.3×", "1.5×".
func fmtTimes(v float64) string {
	s := fmt.Sprintf("%.2g", v)
	if strings.Contains(s, "e") {
		s = fmt.Sprintf("%.0f", v)
	}
	return s + "×"
}
