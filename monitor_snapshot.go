package conc

import (
	"time"
)

// MonitorSnapshot is what a Monitor sees at one moment: every pipeline run it
// knows of and everything watched. It is a plain value; its JSON field names
// are stable and documented for scripts in viz/README.md. Slices are never
// nil, so they encode as [] rather than null.
type MonitorSnapshot struct {
	Time          time.Time              `json:"time"`
	StallAfter    float64                `json:"stall_after_s"`   // seconds without progress before a stall
	RecentWindow  float64                `json:"recent_window_s"` // seconds the recent figures span
	Pipelines     []PipelineSnapshot     `json:"pipelines"`
	Pools         []PoolSnapshot         `json:"pools"`
	Breakers      []BreakerSnapshot      `json:"breakers"`
	Limiters      []LimiterSnapshot      `json:"limiters"`
	KeyedLimiters []KeyedLimiterSnapshot `json:"keyed_limiters"`
	Brokers       []BrokerSnapshot       `json:"brokers"`
	FanIns        []FanInSnapshot        `json:"fan_ins"`
}

// PipelineSnapshot is one run of a Monitored stage, drawn as a graph: Nodes
// in flow order (the source first, the sink last) and Edges between
// consecutive nodes. A finished run stays until the next run of the same
// name finishes.
type PipelineSnapshot struct {
	Name    string  `json:"name"`
	Run     int     `json:"run"` // 1 for the first run of this name, and so on
	Running bool    `json:"running"`
	Error   string  `json:"error,omitempty"` // the run's error, once finished
	Elapsed float64 `json:"elapsed_s"`
	// Bottleneck is the ID of the node that limits throughput, or "": a
	// stage or pool busy at least 70% of the recent window while a node
	// upstream of it was backpressured at least 30% of it.
	Bottleneck string         `json:"bottleneck"`
	Nodes      []NodeSnapshot `json:"nodes"`
	Edges      []EdgeSnapshot `json:"edges"`
}

// NodeSnapshot is one node of a pipeline graph. Kind is "source", "stage"
// (stages fused onto one goroutine: Stages names them), "pool" (one stage
// with Workers(n > 1): fan-out to its workers and fan-in after them) or
// "sink". In and Out count the items the node took and passed on; a source
// has only Out and a sink only In.
type NodeSnapshot struct {
	ID      string          `json:"id"`
	Kind    string          `json:"kind"`
	Name    string          `json:"name"`
	Stages  []StageSnapshot `json:"stages"`
	Workers int             `json:"workers"`      // goroutines of the node (0 when fused into a neighbour)
	Busy    int             `json:"busy_workers"` // of them, not waiting right now
	In      uint64          `json:"in"`
	Out     uint64          `json:"out"`
	Dropped uint64          `json:"dropped"` // removed by Filter stages
	Errors  uint64          `json:"errors"`
	InRate  float64         `json:"in_per_s"`  // over the recent window
	OutRate float64         `json:"out_per_s"` // over the recent window
	// Queued and Capacity describe Run's input channel, for a source
	// reading one.
	Queued   int `json:"queued"`
	Capacity int `json:"capacity"`
	// Timed says the node has goroutines of its own, whose time is split
	// into Time (since the run started) and Recent (the recent window).
	Timed  bool      `json:"timed"`
	Time   TimeSplit `json:"time"`
	Recent TimeSplit `json:"recent"`
	// Backpressure grades Recent.Backpressured as Flink does: "ok" up to
	// 10%, "low" up to 50%, "high" above.
	Backpressure string `json:"backpressure"`
	Bottleneck   bool   `json:"bottleneck"`
	// Stalled is set when the node holds pending work and none of its
	// counts has moved for StallAfter; WaitsOn says where it is stuck:
	// "output" (nobody takes what it hands on), "input", or "function"
	// (inside the stage's own function).
	Stalled    bool    `json:"stalled"`
	WaitsOn    string  `json:"waits_on,omitempty"`
	StalledFor float64 `json:"stalled_for_s,omitempty"`
}

// StageSnapshot is one stage of the user's description inside a node.
// Stages without a Named name are called after their kind and position in
// the pipeline, such as "map#2".
type StageSnapshot struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"` // "map", "filter", "flatmap", "batch"
	In      uint64 `json:"in"`
	Out     uint64 `json:"out"`
	Dropped uint64 `json:"dropped"`
	Errors  uint64 `json:"errors"`
}

// TimeSplit divides a node's goroutine time into fractions that add up to 1:
// running (Busy), blocked handing output on (Backpressured) and waiting for
// input (Idle).
type TimeSplit struct {
	Busy          float64 `json:"busy"`
	Backpressured float64 `json:"backpressured"`
	Idle          float64 `json:"idle"`
}

// EdgeSnapshot is the hand-off between two nodes: "fused" (a direct call, no
// buffer), "chunks" (a goroutine boundary that moves items in chunks) or
// "channel" (Run's output channel). Queued items wait in it, of Capacity.
type EdgeSnapshot struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Kind     string `json:"kind"`
	Queued   int    `json:"queued"`
	Capacity int    `json:"capacity"`
}

// PoolSnapshot is a watched Pool: its PoolStats, the rate of finished jobs,
// and a stall flag when it holds jobs and finished none for StallAfter
// (WaitsOn "full queue" when the queue is full too, as when a job submits
// to its own full pool, else "jobs").
type PoolSnapshot struct {
	Name       string  `json:"name"`
	QueueSize  int     `json:"queue_size"`
	Submitted  uint64  `json:"submitted"`
	Rejected   uint64  `json:"rejected"`
	Queued     int     `json:"queued"`
	Running    int     `json:"running"`
	Completed  uint64  `json:"completed"`
	Failed     uint64  `json:"failed"`
	Panicked   uint64  `json:"panicked"`
	NotRun     uint64  `json:"not_run"`
	Dropped    uint64  `json:"dropped"`
	DoneRate   float64 `json:"done_per_s"`
	Stalled    bool    `json:"stalled"`
	WaitsOn    string  `json:"waits_on,omitempty"`
	StalledFor float64 `json:"stalled_for_s,omitempty"`
}

// BreakerSnapshot is a watched Breaker: state, counters, rates and the
// state changes the monitor saw between snapshots (the last 16).
type BreakerSnapshot struct {
	Name         string              `json:"name"`
	State        string              `json:"state"` // "closed", "open", "half-open"
	Failures     uint64              `json:"failures"`
	Rejected     uint64              `json:"rejected"`
	Trips        uint64              `json:"trips"`
	FailureRate  float64             `json:"failures_per_s"`
	RejectedRate float64             `json:"rejected_per_s"`
	Transitions  []BreakerTransition `json:"transitions"`
}

// BreakerTransition is a change of a breaker's state seen by a snapshot.
type BreakerTransition struct {
	Time time.Time `json:"time"`
	From string    `json:"from"`
	To   string    `json:"to"`
}

// LimiterSnapshot is a watched Limiter: its configuration, its bucket and
// the calls it allowed and denied.
type LimiterSnapshot struct {
	Name        string  `json:"name"`
	Limit       float64 `json:"limit_per_s"` // -1 when unlimited
	Burst       int     `json:"burst"`
	Tokens      float64 `json:"tokens"`
	Allowed     uint64  `json:"allowed"`
	Denied      uint64  `json:"denied"`
	AllowedRate float64 `json:"allowed_per_s"`
	DeniedRate  float64 `json:"denied_per_s"`
}

// KeyedLimiterSnapshot is a watched KeyedLimiter.
type KeyedLimiterSnapshot struct {
	Name        string  `json:"name"`
	Keys        int     `json:"keys"`
	Allowed     uint64  `json:"allowed"`
	Denied      uint64  `json:"denied"`
	Refused     uint64  `json:"refused"`
	AllowedRate float64 `json:"allowed_per_s"`
	DeniedRate  float64 `json:"denied_per_s"`
}

// BrokerSnapshot is a watched Broker. Dropped adds up every policy's drops.
// Stalled is set when messages wait in subscriptions and no subscriber has
// taken one for StallAfter (WaitsOn "subscriber").
type BrokerSnapshot struct {
	Name          string  `json:"name"`
	Subscribers   int     `json:"subscribers"`
	Buffered      int     `json:"buffered"`
	Published     uint64  `json:"published"`
	Delivered     uint64  `json:"delivered"`
	Dropped       uint64  `json:"dropped"`
	PublishedRate float64 `json:"published_per_s"`
	DroppedRate   float64 `json:"dropped_per_s"`
	Stalled       bool    `json:"stalled"`
	WaitsOn       string  `json:"waits_on,omitempty"`
	StalledFor    float64 `json:"stalled_for_s,omitempty"`
	// Slowest is the live subscription with the most events waiting, nil
	// when none waits.
	Slowest *SubscriberSnapshot `json:"slowest,omitempty"`
}

// SubscriberSnapshot is one subscription of a watched Broker.
type SubscriberSnapshot struct {
	Pattern   string `json:"pattern"`
	Policy    string `json:"policy"`
	Buffered  uint64 `json:"buffered"`
	Delivered uint64 `json:"delivered"`
	Dropped   uint64 `json:"dropped"`
}

// FanInSnapshot is a watched FanIn.
type FanInSnapshot struct {
	Name          string  `json:"name"`
	Inputs        int     `json:"inputs"`
	Open          int     `json:"open"`
	Forwarded     uint64  `json:"forwarded"`
	Dropped       uint64  `json:"dropped"`
	ForwardedRate float64 `json:"forwarded_per_s"`
}

// monSample is what one snapshot saw of a run, kept for the recent window.
type monSample struct {
	t     int64 // ns since the run started
	nodes []monNodeSample
}

type monNodeSample struct {
	in, out  uint64
	idle, bp int64
}

// monWatched is one value given to Watch, with what the snapshots remember.
type monWatched struct {
	name    string
	kind    string
	pool    monPool
	breaker *Breaker
	limiter *Limiter
	keyed   interface{ Stats() KeyedLimiterStats }
	broker  interface{ Stats() BrokerStats }
	subs    interface{ AppendSubStats([]SubStats) []SubStats }
	fanIn   interface{ Stats() FanInStats }

	rates    monRates
	lastDone uint64
	lastMove time.Time
	state    BreakerState
	trans    []BreakerTransition

	// The slowest subscription a broker's last snapshot saw, to tell when
	// it stops taking events while the others go on.
	subStats []SubStats
	slowKey  string
	slowDone uint64
	slowMove time.Time
}

// monRates turns counters sampled at each snapshot into rates over the
// recent window.
type monRates struct {
	t []time.Time
	v [][]uint64
}

func (r *monRates) rates(now time.Time, window time.Duration, v ...uint64) []float64 {
	out := make([]float64, len(v))
	// The base is the newest sample at least window old, else the oldest.
	base := -1
	for i, t := range r.t {
		if now.Sub(t) >= window || base < 0 {
			base = i
		}
	}
	if base >= 0 {
		if dt := now.Sub(r.t[base]).Seconds(); dt > 0 {
			for i := range v {
				out[i] = float64(v[i]-r.v[base][i]) / dt
			}
		}
		r.t = r.t[base:]
		r.v = r.v[base:]
	}
	r.t = append(r.t, now)
	r.v = append(r.v, v)
	return out
}

// Snapshot returns what m sees now. It reads every watched value's Stats
// and the counters of every run; the rates and the recent time split come
// from the snapshots taken during the last RecentWindow, so call it
// regularly (the viz page does, twice a second) for them to mean much.
func (m *Monitor) Snapshot() MonitorSnapshot {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	s := MonitorSnapshot{
		Time:          now,
		StallAfter:    m.stallAfter.Seconds(),
		RecentWindow:  m.window.Seconds(),
		Pipelines:     []PipelineSnapshot{},
		Pools:         []PoolSnapshot{},
		Breakers:      []BreakerSnapshot{},
		Limiters:      []LimiterSnapshot{},
		KeyedLimiters: []KeyedLimiterSnapshot{},
		Brokers:       []BrokerSnapshot{},
		FanIns:        []FanInSnapshot{},
	}
	for _, r := range m.runs {
		if !r.ready {
			continue
		}
		s.Pipelines = append(s.Pipelines, m.pipeline(r, now))
	}
	for _, w := range m.watched {
		m.watchedInto(&s, w, now)
	}
	return s
}

// pipeline builds the snapshot of one run. m.mu is held.
func (m *Monitor) pipeline(r *monRun, now time.Time) PipelineSnapshot {
	t := int64(now.Sub(r.start))
	ended := r.ended.Load()
	if ended != 0 {
		t = ended
	}
	p := PipelineSnapshot{Name: r.name, Run: r.seq, Running: ended == 0, Elapsed: time.Duration(t).Seconds()}
	if e := r.failed.Load(); e != nil {
		p.Error = *e
	}
	base := m.baseSample(r, t)
	cur := monSample{t: t, nodes: make([]monNodeSample, len(r.nodes))}
	p.Nodes = make([]NodeSnapshot, len(r.nodes))
	p.Edges = make([]EdgeSnapshot, 0, len(r.edges))
	for i, n := range r.nodes {
		ns := &p.Nodes[i]
		ns.ID, ns.Kind, ns.Name, ns.Timed = "n"+itoa(i), n.kind, n.name, n.timed
		nodeCounts(ns, n)
		if q := n.queue.Load(); q != nil && ended == 0 {
			ns.Queued, ns.Capacity = (*q)()
		}
		w := nodeTimes(ns, n, t, ended != 0)
		cur.nodes[i] = monNodeSample{in: ns.In, out: ns.Out, idle: w.idle, bp: w.bp}
		var b *monNodeSample
		if base != nil && i < len(base.nodes) && t > base.t {
			b = &base.nodes[i]
		}
		nodeRates(ns, n, w, b, base, t)
		// Progress is any count moving between snapshots. A node blocked
		// handing output on has made none since it blocked (it publishes
		// its counts as it does), which may be long before this snapshot,
		// such as the first one.
		if ns.In != n.lastIn || ns.Out != n.lastOut || ended != 0 {
			n.lastIn, n.lastOut, n.lastMove = ns.In, ns.Out, now
			if w.waitOut > 0 && ended == 0 && n.kind != "pool" {
				n.lastMove = r.start.Add(time.Duration(w.outSince))
			}
		}
		if i > 0 {
			p.Edges = append(p.Edges, edgeSnapshot(r.edges[i-1], i, ended != 0))
		}
		if ended == 0 && n.timed && n.kind != "sink" {
			queued := i > 0 && p.Edges[i-1].Queued > 0
			m.markStall(ns, n, w, queued, now)
		}
	}
	markBottleneck(&p)
	// Keep the samples the next snapshots may need as their base.
	keep := 0
	for i := range r.samples {
		if t-r.samples[i].t >= int64(m.window) {
			keep = i
		}
	}
	r.samples = append(r.samples[keep:], cur)
	return p
}

// baseSample returns the sample the recent window starts from: the newest
// one at least a window old, or the oldest kept; nil before the first.
func (m *Monitor) baseSample(r *monRun, t int64) *monSample {
	var base *monSample
	for i := range r.samples {
		if t-r.samples[i].t >= int64(m.window) || base == nil {
			base = &r.samples[i]
		}
	}
	return base
}

// nodeCounts fills a node's stages and its in, out, dropped and error counts.
func nodeCounts(ns *NodeSnapshot, n *monNode) {
	ns.Stages = make([]StageSnapshot, len(n.members))
	for j := range n.members {
		mb := n.members[len(n.members)-1-j]
		in, out := mb.c.load()
		st := StageSnapshot{Name: mb.name, Kind: mb.kind, In: in, Out: out, Errors: mb.errors.Load()}
		if mb.kind == "filter" && in > out {
			st.Dropped = in - out
		}
		ns.Stages[j] = st
		ns.Dropped += st.Dropped
		ns.Errors += st.Errors
	}
	switch {
	case len(n.members) > 0:
		ns.In, ns.Out = ns.Stages[0].In, ns.Stages[len(ns.Stages)-1].Out
		names := make([]byte, 0, 32)
		for j, st := range ns.Stages {
			if j > 0 {
				names = append(names, " · "...)
			}
			names = append(names, st.Name...)
		}
		ns.Name = string(names)
	case n.kind == "source":
		ns.Out, _ = n.count.load()
		if n.from != nil {
			// What the first stage took in: what it did, and what
			// failed in it.
			in, _ := n.from.c.load()
			ns.Out = in + n.from.errors.Load()
		}
		ns.In = ns.Out
	default:
		ns.In, _ = n.count.load()
		if n.from != nil {
			_, ns.In = n.from.c.load()
		}
		ns.Out = ns.In
	}
}

// monWaits is what a timed node's goroutines waited on, up to a snapshot:
// time idle and backpressured in total, how many wait for input and for
// output now, and since when the output wait has lasted.
type monWaits struct {
	idle, bp, outSince int64
	waitIn, waitOut    int
}

// nodeTimes fills a timed node's workers, busy workers and time split since
// the start, and returns its waits.
func nodeTimes(ns *NodeSnapshot, n *monNode, t int64, ended bool) monWaits {
	var w monWaits
	if !n.timed {
		return w
	}
	w.idle, w.waitIn, _ = n.in.at(t)
	w.bp, w.waitOut, w.outSince = n.out.at(t)
	ns.Workers = max(1, n.workers)
	ns.Busy = max(0, ns.Workers-w.waitIn)
	if n.kind != "pool" {
		ns.Busy = max(0, ns.Busy-w.waitOut)
	}
	if ended {
		ns.Busy = 0
	}
	ns.Time = split(w.idle, w.bp, t, ns.Workers)
	return w
}

// nodeRates fills a node's rates and recent time split, over the recent
// window when there is a base sample b (taken at base.t), since the start
// otherwise, and grades its backpressure as Flink does.
func nodeRates(ns *NodeSnapshot, n *monNode, w monWaits, b *monNodeSample, base *monSample, t int64) {
	if b != nil {
		dt := t - base.t
		sec := time.Duration(dt).Seconds()
		ns.InRate = float64(ns.In-b.in) / sec
		ns.OutRate = float64(ns.Out-b.out) / sec
		if n.timed {
			ns.Recent = split(w.idle-b.idle, w.bp-b.bp, dt, ns.Workers)
		}
	} else {
		if sec := time.Duration(t).Seconds(); sec > 0 {
			ns.InRate, ns.OutRate = float64(ns.In)/sec, float64(ns.Out)/sec
		}
		ns.Recent = ns.Time
	}
	if !n.timed {
		return
	}
	switch bpr := ns.Recent.Backpressured; {
	case bpr <= 0.1:
		ns.Backpressure = "ok"
	case bpr <= 0.5:
		ns.Backpressure = "low"
	default:
		ns.Backpressure = "high"
	}
}

// edgeSnapshot describes the edge into node i.
func edgeSnapshot(e *monEdge, i int, ended bool) EdgeSnapshot {
	es := EdgeSnapshot{From: "n" + itoa(i-1), To: "n" + itoa(i), Kind: e.kind, Capacity: e.cap}
	if e.queue != nil && !ended {
		es.Queued, es.Capacity = e.queue()
	} else if e.kind == "chunks" {
		es.Queued = int(max(0, e.queued.Load()))
	}
	return es
}

// markStall flags a running node that holds pending work (an item in hand,
// or items queued into it) and has made no progress for StallAfter, with
// what it waits on.
func (m *Monitor) markStall(ns *NodeSnapshot, n *monNode, w monWaits, queued bool, now time.Time) {
	pending := w.waitIn < ns.Workers
	if n.kind == "source" {
		pending = w.waitOut > 0
	} else if queued {
		pending = true
	}
	stuck := now.Sub(n.lastMove)
	if !pending || stuck < m.stallAfter {
		return
	}
	ns.Stalled, ns.StalledFor = true, stuck.Seconds()
	switch {
	case w.waitOut > 0:
		ns.WaitsOn = "output"
	case w.waitIn >= ns.Workers:
		ns.WaitsOn = "input"
	default:
		ns.WaitsOn = "function"
	}
}

// markBottleneck names the first stage or pool, in flow order, busy at least
// 70% of the recent window while something upstream was backpressured at
// least 30% of it.
func markBottleneck(p *PipelineSnapshot) {
	pressed := false
	for i := range p.Nodes {
		ns := &p.Nodes[i]
		if !ns.Timed {
			continue
		}
		if pressed && ns.Recent.Busy >= 0.7 && (ns.Kind == "stage" || ns.Kind == "pool") {
			ns.Bottleneck = true
			p.Bottleneck = ns.ID
			return
		}
		if ns.Recent.Backpressured >= 0.3 {
			pressed = true
		}
	}
}

// split turns waiting times into a TimeSplit of span ns for workers
// goroutines. idle is the workers' total; bp is the time of the one
// goroutine that hands output on (for a pool, its merge goroutine). While
// that one is blocked the node as a whole is backpressured, as Flink counts
// a task whose output is full, and its workers' idleness is a consequence:
// idle takes only what backpressure leaves.
func split(idle, bp, span int64, workers int) TimeSplit {
	if span <= 0 {
		return TimeSplit{}
	}
	fb := min(max(float64(bp)/float64(span), 0), 1)
	fi := min(max(float64(idle)/float64(span)/float64(workers), 0), 1-fb)
	return TimeSplit{Busy: max(0, 1-fi-fb), Backpressured: fb, Idle: fi}
}

// watchedInto adds one watched value to s. m.mu is held.
func (m *Monitor) watchedInto(s *MonitorSnapshot, w *monWatched, now time.Time) {
	if w.lastMove.IsZero() {
		w.lastMove = now
	}
	switch {
	case w.pool != nil:
		st := w.pool.Stats()
		done := st.Completed + st.Failed + st.Panicked + st.NotRun
		r := w.rates.rates(now, m.window, done)
		ps := PoolSnapshot{Name: w.name, QueueSize: w.pool.queueSize(),
			Submitted: st.Submitted, Rejected: st.Rejected, Queued: st.Queued, Running: st.Running,
			Completed: st.Completed, Failed: st.Failed, Panicked: st.Panicked, NotRun: st.NotRun,
			Dropped: st.Dropped, DoneRate: r[0]}
		if done != w.lastDone {
			w.lastDone, w.lastMove = done, now
		}
		if stuck := now.Sub(w.lastMove); (st.Queued > 0 || st.Running > 0) && stuck >= m.stallAfter {
			ps.Stalled, ps.StalledFor, ps.WaitsOn = true, stuck.Seconds(), "jobs"
			if st.Queued >= ps.QueueSize {
				ps.WaitsOn = "full queue"
			}
		}
		s.Pools = append(s.Pools, ps)
	case w.breaker != nil:
		st := w.breaker.Stats()
		r := w.rates.rates(now, m.window, st.Failures+st.ProbeFailures, st.Rejected)
		if st.State != w.state {
			w.trans = append(w.trans, BreakerTransition{Time: now, From: w.state.String(), To: st.State.String()})
			if len(w.trans) > 16 {
				w.trans = w.trans[len(w.trans)-16:]
			}
			w.state = st.State
		}
		s.Breakers = append(s.Breakers, BreakerSnapshot{Name: w.name, State: st.State.String(),
			Failures: st.Failures + st.ProbeFailures, Rejected: st.Rejected, Trips: st.Trips,
			FailureRate: r[0], RejectedRate: r[1], Transitions: append([]BreakerTransition{}, w.trans...)})
	case w.limiter != nil:
		st := w.limiter.Stats()
		r := w.rates.rates(now, m.window, st.Allowed, st.Denied)
		ls := LimiterSnapshot{Name: w.name, Limit: st.Limit, Burst: st.Burst, Tokens: st.Tokens,
			Allowed: st.Allowed, Denied: st.Denied, AllowedRate: r[0], DeniedRate: r[1]}
		if st.Limit >= Inf {
			ls.Limit = -1 // JSON has no infinity
		}
		s.Limiters = append(s.Limiters, ls)
	case w.keyed != nil:
		st := w.keyed.Stats()
		r := w.rates.rates(now, m.window, st.Allowed, st.Denied)
		s.KeyedLimiters = append(s.KeyedLimiters, KeyedLimiterSnapshot{Name: w.name, Keys: st.Keys,
			Allowed: st.Allowed, Denied: st.Denied, Refused: st.Refused, AllowedRate: r[0], DeniedRate: r[1]})
	case w.broker != nil:
		st := w.broker.Stats()
		dropped := st.DroppedNewest + st.DroppedOldest + st.DroppedBlock
		r := w.rates.rates(now, m.window, st.Published, dropped)
		bs := BrokerSnapshot{Name: w.name, Subscribers: st.Subscribers,
			Buffered: st.Buffered, Published: st.Published, Delivered: st.Delivered, Dropped: dropped,
			PublishedRate: r[0], DroppedRate: r[1]}
		// What the subscribers have taken out of their buffers so far.
		if taken := st.Delivered - uint64(max(0, st.Buffered)); taken != w.lastDone {
			w.lastDone, w.lastMove = taken, now
		}
		if stuck := now.Sub(w.lastMove); st.Buffered > 0 && stuck >= m.stallAfter {
			bs.Stalled, bs.StalledFor, bs.WaitsOn = true, stuck.Seconds(), "subscriber"
		}
		w.slowest(now, m.stallAfter, &bs)
		s.Brokers = append(s.Brokers, bs)
	case w.fanIn != nil:
		st := w.fanIn.Stats()
		r := w.rates.rates(now, m.window, st.Forwarded)
		s.FanIns = append(s.FanIns, FanInSnapshot{Name: w.name, Inputs: st.Inputs, Open: st.Open,
			Forwarded: st.Forwarded, Dropped: st.Dropped, ForwardedRate: r[0]})
	}
}

// slowest fills bs.Slowest from the broker's subscriptions, and flags a
// stall when the subscription with the most events waiting took none for
// stallAfter while other subscribers kept the broker's total moving.
// Subscriptions have no identity in SubStats, so the one compared across
// snapshots is the slowest with the same pattern and policy.
func (w *monWatched) slowest(now time.Time, stallAfter time.Duration, bs *BrokerSnapshot) {
	if w.subs == nil {
		return
	}
	w.subStats = w.subs.AppendSubStats(w.subStats[:0])
	var slow *SubStats
	for i := range w.subStats {
		if st := &w.subStats[i]; st.Buffered > 0 && (slow == nil || st.Buffered > slow.Buffered) {
			slow = st
		}
	}
	if slow == nil {
		w.slowKey = ""
		return
	}
	bs.Slowest = &SubscriberSnapshot{Pattern: slow.Pattern, Policy: slow.Policy.String(),
		Buffered: slow.Buffered, Delivered: slow.Delivered, Dropped: slow.Dropped}
	key := slow.Policy.String() + " " + slow.Pattern
	if key != w.slowKey || slow.Delivered != w.slowDone {
		w.slowKey, w.slowDone, w.slowMove = key, slow.Delivered, now
	}
	if stuck := now.Sub(w.slowMove); !bs.Stalled && stuck >= stallAfter {
		bs.Stalled, bs.StalledFor, bs.WaitsOn = true, stuck.Seconds(), "subscriber"
	}
}
