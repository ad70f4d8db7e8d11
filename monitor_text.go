package conc

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText takes a Snapshot and writes it to w as a compact table, one row
// per pipeline node and per watched value, for a program without a browser:
// workers busy/total, items in and out with the recent rate, the recent
// busy/backpressured/idle split, and flags for the bottleneck and stalls.
// It returns the first write error.
func (m *Monitor) WriteText(w io.Writer) error {
	return m.Snapshot().WriteText(w)
}

// WriteText writes s to w as the table Monitor.WriteText describes.
func (s MonitorSnapshot) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, p := range s.Pipelines {
		state := "running"
		if !p.Running {
			state = "finished"
			if p.Error != "" {
				state = "failed: " + p.Error
			}
		}
		fmt.Fprintf(tw, "pipeline %s #%d (%s, %.1fs)\n", oneLine(p.Name), p.Run, state, p.Elapsed)
		fmt.Fprintln(tw, "  node\tworkers\tin\tout\tout/s\tbusy\tbackp\tidle\t")
		for i, n := range p.Nodes {
			workers, split := "-", "-\t-\t-"
			if n.Timed {
				workers = fmt.Sprintf("%d/%d", n.Busy, n.Workers)
				split = fmt.Sprintf("%.0f%%\t%.0f%%\t%.0f%%", 100*n.Recent.Busy, 100*n.Recent.Backpressured, 100*n.Recent.Idle)
			}
			var flags []string
			if n.Bottleneck {
				flags = append(flags, "BOTTLENECK")
			}
			if n.Stalled {
				flags = append(flags, fmt.Sprintf("STALLED %.0fs on %s", n.StalledFor, n.WaitsOn))
			}
			if n.Errors > 0 {
				flags = append(flags, fmt.Sprintf("%d errors", n.Errors))
			}
			if n.Dropped > 0 {
				flags = append(flags, fmt.Sprintf("%d dropped", n.Dropped))
			}
			if i > 0 && p.Edges[i-1].Capacity > 0 {
				e := p.Edges[i-1]
				flags = append(flags, fmt.Sprintf("queue %d/%d", e.Queued, e.Capacity))
			}
			fmt.Fprintf(tw, "  %s %s\t%s\t%d\t%d\t%.0f\t%s\t%s\n", n.Kind, oneLine(n.Name), workers, n.In, n.Out, n.OutRate, split, strings.Join(flags, " "))
		}
	}
	if len(s.Pools)+len(s.Breakers)+len(s.Limiters)+len(s.KeyedLimiters)+len(s.Brokers)+len(s.FanIns) > 0 {
		fmt.Fprintln(tw, "watched\t")
	}
	for _, p := range s.Pools {
		stall := ""
		if p.Stalled {
			stall = fmt.Sprintf("\tSTALLED %.0fs on %s", p.StalledFor, p.WaitsOn)
		}
		fmt.Fprintf(tw, "  pool %s\tqueued %d/%d\trunning %d\tdone %d (%.0f/s)\tfailed %d%s\n", oneLine(p.Name),
			p.Queued, p.QueueSize, p.Running, p.Completed+p.Failed+p.Panicked, p.DoneRate, p.Failed+p.Panicked, stall)
	}
	for _, b := range s.Breakers {
		fmt.Fprintf(tw, "  breaker %s\t%s\ttrips %d\tfailures %d\trejected %d (%.0f/s)\n", oneLine(b.Name), b.State, b.Trips, b.Failures, b.Rejected, b.RejectedRate)
	}
	for _, l := range s.Limiters {
		fmt.Fprintf(tw, "  limiter %s\t%.0f/s\tburst %d\ttokens %.1f\tallowed %.0f/s\tdenied %.0f/s\n", oneLine(l.Name), l.Limit, l.Burst, l.Tokens, l.AllowedRate, l.DeniedRate)
	}
	for _, k := range s.KeyedLimiters {
		fmt.Fprintf(tw, "  keyed limiter %s\tkeys %d\tallowed %.0f/s\tdenied %.0f/s\n", oneLine(k.Name), k.Keys, k.AllowedRate, k.DeniedRate)
	}
	for _, b := range s.Brokers {
		stall := ""
		if b.Stalled {
			stall = fmt.Sprintf("\tSTALLED %.0fs on %s", b.StalledFor, b.WaitsOn)
		}
		slow := ""
		if b.Slowest != nil {
			slow = fmt.Sprintf("\tslowest %s (%d waiting)", oneLine(b.Slowest.Pattern), b.Slowest.Buffered)
		}
		fmt.Fprintf(tw, "  broker %s\tsubscribers %d\tbuffered %d\tpublished %.0f/s\tdropped %d%s%s\n", oneLine(b.Name), b.Subscribers, b.Buffered, b.PublishedRate, b.Dropped, slow, stall)
	}
	for _, f := range s.FanIns {
		fmt.Fprintf(tw, "  fan-in %s\tinputs %d/%d open\tforwarded %.0f/s\tdropped %d\n", oneLine(f.Name), f.Open, f.Inputs, f.ForwardedRate, f.Dropped)
	}
	return tw.Flush()
}

// oneLine keeps a user's name from breaking the table: control characters
// (newlines, tabs, escape sequences) are shown quoted.
func oneLine(s string) string {
	for _, c := range s {
		if c < ' ' || c == 0x7f {
			q := fmt.Sprintf("%q", s)
			return q[1 : len(q)-1]
		}
	}
	return s
}
