package main

import (
	"fmt"
	"html"
	"io"
	"math"
	"slices"
)

// Chart geometry, in SVG user units.
const (
	chartWidth = 960
	labelWidth = 300 // workload and implementation names
	valueWidth = 90  // the number printed after each bar
	barHeight  = 13
	barGap     = 3
	groupGap   = 10
	suiteGap   = 26
	axisHeight = 40
)

// barColor gives each class of implementation one colour throughout.
func barColor(c class) string {
	switch c {
	case classConc:
		return "#1f77b4"
	case classMutex:
		return "#ff7f0e"
	case classChan:
		return "#d62728"
	case classFloor:
		return "#7f7f7f"
	}
	return "#9467bd"
}

// writeChart draws a horizontal bar chart of time per item on a log scale,
// one block per suite, one group of bars per workload at the highest cpu
// count measured for it (the chart would otherwise be twice as tall and say
// little more than the table).
func writeChart(w io.Writer, title string, rs []result) {
	suites, groups := suiteGroups(rs)
	type bar struct {
		impl string
		ns   float64
	}
	type grp struct {
		label string
		bars  []bar
	}
	type blk struct {
		name string
		gs   []grp
	}
	var blocks []blk
	lo, hi := math.Inf(1), 0.0
	for _, s := range suites {
		maxCPU := map[string]int{}
		for _, g := range groups[s] {
			maxCPU[g.workload] = max(maxCPU[g.workload], g.cpu)
		}
		b := blk{name: s}
		for _, g := range groups[s] {
			if g.cpu != maxCPU[g.workload] {
				continue
			}
			gr := grp{label: fmt.Sprintf("%s (cpu=%d)", g.workload, g.cpu)}
			impls := concImpls(g)
			impls = append(impls, columns([]*group{g})...)
			for _, impl := range impls {
				ns := g.impls[impl].nsOp
				if ns <= 0 {
					continue
				}
				gr.bars = append(gr.bars, bar{impl, ns})
				lo, hi = min(lo, ns), max(hi, ns)
			}
			b.gs = append(b.gs, gr)
		}
		blocks = append(blocks, b)
	}
	if hi == 0 {
		lo, hi = 1, 10
	}
	// Whole decades at both ends keep the grid lines on round numbers.
	dlo := math.Floor(math.Log10(lo))
	dhi := math.Ceil(math.Log10(hi))
	if dhi <= dlo {
		dhi = dlo + 1
	}
	span := float64(chartWidth - labelWidth - valueWidth)
	xOf := func(ns float64) float64 {
		return labelWidth + span*(math.Log10(ns)-dlo)/(dhi-dlo)
	}

	height := axisHeight + 30
	for _, b := range blocks {
		height += suiteGap
		for _, g := range b.gs {
			height += barHeight + barGap + len(g.bars)*(barHeight+barGap) + groupGap
		}
	}
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n",
		chartWidth, height, chartWidth, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(w, `<text x="10" y="20" font-size="15" font-weight="bold">%s</text>`+"\n", html.EscapeString(title))
	fmt.Fprintf(w, `<text x="10" y="36" fill="#555">time per item, log scale (shorter is faster) · blue: conc · orange: naive mutex · red: naive channel · purple: other baseline or peer · grey: floor</text>`+"\n")
	top := axisHeight + 10
	// Decade grid lines over the whole height.
	for d := dlo; d <= dhi; d++ {
		x := xOf(math.Pow(10, d))
		fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x, top, x, height-10)
		fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s</text>`+"\n", x, top-2, fmtNs(math.Pow(10, d)))
	}
	y := top + 6
	for _, b := range blocks {
		y += suiteGap - 6
		fmt.Fprintf(w, `<text x="10" y="%d" font-size="13" font-weight="bold">%s</text>`+"\n", y, html.EscapeString(b.name))
		y += 6
		for _, g := range b.gs {
			y += barHeight
			fmt.Fprintf(w, `<text x="20" y="%d" fill="#333">%s</text>`+"\n", y-2, html.EscapeString(g.label))
			y += barGap
			bars := slices.Clone(g.bars)
			for _, br := range bars {
				x1 := xOf(br.ns)
				fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelWidth-6, y+barHeight-3, html.EscapeString(br.impl))
				fmt.Fprintf(w, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", labelWidth, y, max(x1-labelWidth, 1), barHeight, barColor(classify(br.impl)))
				fmt.Fprintf(w, `<text x="%.1f" y="%d">%s</text>`+"\n", max(x1, labelWidth)+4, y+barHeight-3, fmtNs(br.ns))
				y += barHeight + barGap
			}
			y += groupGap
		}
	}
	fmt.Fprintln(w, `</svg>`)
}
