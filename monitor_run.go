package conc

import (
	"sync"
	"sync/atomic"
	"time"
)

// This file holds what a monitored pipeline run records while it runs. The
// hooks in stage*.go are all guarded by a nil pointer that only Monitored
// sets, so an unmonitored run pays a predictable branch at most.
//
// A run is drawn as nodes in flow order: the source, the segments (the
// stages fused onto one goroutine), the worker pools of Workers(n) stages
// and the sink. A goroutine whose segment has no stage of its own (the loop
// feeding a run, the merge goroutine of a pool, All's caller) is folded
// into the node beside it, so that node gets that goroutine's time.
//
// Counts: a fused stage keeps plain counters, owned by the goroutine that
// drives its segment, and publishes them to atomics every monPublish items
// and whenever that goroutine is about to block. A stage that more than one
// goroutine drives (the workers of a pool, the stages around a Batch with a
// maxWait) adds to the atomics directly, per chunk where it can. Time: a
// goroutine reads the clock only when it is about to block and when it
// wakes, so busy time is what is left of the run's time after the waits.

// monPublish is how many items a fused stage counts between publications:
// a publication is two atomic stores, locked instructions on amd64, so at
// 64 they cost a fraction of a nanosecond per item.
const monPublish = 64

// A monRun is one run of a monitored pipeline.
type monRun struct {
	m        *Monitor
	name     string
	seq      int
	start    time.Time
	nodes    []*monNode // flow order once built; back to front while building
	edges    []*monEdge // edges[i] goes from nodes[i] to nodes[i+1]
	members  []*monMember
	cur      *monNode // while building: the node of the goroutine being wired
	finished bool     // guarded by Monitor.mu
	ready    bool     // built: nodes and edges are complete; guarded by Monitor.mu
	ended    atomic.Int64
	failed   atomic.Pointer[string]
	done     bool // monDone ran; touched only by the run's owner
	// dropSink, set by Collect's and All's fused sinks, stops the sink's
	// own count when the last stage can stand for it.
	dropSink func()

	// Guarded by Monitor.mu: what the snapshots remember.
	samples []monSample
}

// A monNode is one box of the graph.
type monNode struct {
	kind    string // "source", "stage", "pool", "sink"
	name    string // sources and sinks; stages take their members' names
	workers int
	members []*monMember // back to front, as built
	in, out monWait      // waiting for input; blocked handing output on
	timed   bool         // in and out are recorded for this node
	shared  bool         // more than one goroutine drives its members
	// count is what a source read or a sink received, unless from is set:
	// a source or sink fused with a stage takes its count from that stage
	// (its first or last), which saves counting every item twice.
	count monCount
	from  *monMember
	// extra are counts of other nodes that this node's goroutine keeps:
	// a source or sink fused into it.
	extra []*monCount
	// queue, when set, reports the channel a source reads: items in it
	// and its capacity. The source's goroutine sets it as it starts.
	queue atomic.Pointer[func() (int, int)]

	// Guarded by Monitor.mu: progress as the snapshots saw it.
	lastIn, lastOut uint64
	lastMove        time.Time
}

// A monEdge is the hand-off between two nodes.
type monEdge struct {
	kind   string       // "fused", "chunks", "channel"
	queued atomic.Int64 // items waiting in it
	cap    int
	queue  func() (int, int) // for channels
}

// A monMember is one stage of the user's description.
type monMember struct {
	kind   string
	name   string
	c      monCount
	errors atomic.Uint64
}

// monCount counts the items a stage took in and passed on. in and out are
// plain fields of the goroutine that drives the stage, published to pin and
// pout; a shared count adds to pin and pout directly.
type monCount struct {
	in, out   uint64
	shared    bool
	same      bool // out is always in (a fused Map): only in is counted
	pin, pout atomic.Uint64
}

// tick counts one item in and out items out.
func (c *monCount) tick(out uint64) {
	if c.shared {
		c.pin.Add(1)
		if out != 0 {
			c.pout.Add(out)
		}
		return
	}
	c.in++
	c.out += out
	if c.in%monPublish == 0 {
		c.publish()
	}
}

// tick1 counts one item in and one out for a count that is the same.
func (c *monCount) tick1() {
	if c.shared {
		c.pin.Add(1)
		return
	}
	if c.in++; c.in%monPublish == 0 {
		c.publish()
	}
}

// add counts a chunk: in items in, out items out.
func (c *monCount) add(in, out int) {
	c.pin.Add(uint64(in))
	c.pout.Add(uint64(out))
}

// block counts a block of a fused stage on Collect's block path: in items
// in, out out. Plain counts are published with every block, which is at
// most once per stageChunk items read from the input.
func (c *monCount) block(in, out int) {
	if c.shared {
		c.add(in, out)
		return
	}
	c.in += uint64(in)
	c.out += uint64(out)
	c.publish()
}

// more counts out items out with no item in (a batch cut at the end).
func (c *monCount) more(out uint64) {
	if c.shared {
		c.pout.Add(out)
		return
	}
	c.out += out
}

// publish copies the plain counts to the atomics; a shared count has none.
func (c *monCount) publish() {
	if c.shared {
		return
	}
	if !c.same {
		c.pout.Store(c.out)
	}
	c.pin.Store(c.in)
}

// load returns the published counts.
func (c *monCount) load() (in, out uint64) {
	in = c.pin.Load()
	if c.same {
		return in, in
	}
	return in, c.pout.Load()
}

// monWait accounts for the time the goroutines of a node spend waiting on
// one side. A mutex keeps the three figures consistent with each other; it
// is taken only by a goroutine about to block or just woken, which costs a
// park and a wake-up anyway.
type monWait struct {
	node  *monNode
	start time.Time
	nopub bool // the waiting goroutines own none of the node's plain counts
	mu    sync.Mutex
	n     int64 // goroutines waiting now
	since int64 // sum of their start times, ns since start
	total int64 // ns of waits already over
	last  int64 // start of the latest wait to begin
}

// begin records that a goroutine of the node is about to wait, and first
// publishes the counts the goroutine owns, so a node that stays blocked
// shows everything it did. It returns the start time for end.
func (w *monWait) begin() int64 {
	if w == nil {
		return 0
	}
	if !w.nopub {
		w.node.publish()
	}
	t := int64(time.Since(w.start))
	w.mu.Lock()
	w.n++
	w.since += t
	w.last = t
	w.mu.Unlock()
	return t
}

// end records that the wait that began at t is over.
func (w *monWait) end(t int64) {
	if w == nil {
		return
	}
	now := int64(time.Since(w.start))
	w.mu.Lock()
	w.n--
	w.since -= t
	w.total += now - t
	w.mu.Unlock()
}

// at returns how long the node's goroutines have waited up to now (ns since
// start), counting the waits still going on, how many are waiting, and when
// the latest wait began.
func (w *monWait) at(now int64) (total int64, waiting int, last int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.total + w.n*now - w.since, int(w.n), w.last
}

// publish makes the plain counts of the node's goroutine visible. It is
// called only on that goroutine.
func (n *monNode) publish() {
	if !n.shared {
		n.publishAll()
	}
}

// publishAll publishes every plain count of the node, whoever owns it: only
// for when no goroutine of the run is left (monDone).
func (n *monNode) publishAll() {
	n.count.publish()
	for _, c := range n.extra {
		c.publish()
	}
	for _, mb := range n.members {
		mb.c.publish()
	}
}

// newNode adds a node whose goroutine is wired next (building goes back to
// front) and makes it current.
func (r *monRun) newNode(kind string) *monNode {
	n := &monNode{kind: kind, timed: true}
	n.in.node, n.in.start = n, r.start
	n.out.node, n.out.start = n, r.start
	r.nodes = append(r.nodes, n)
	r.cur = n
	return n
}

// addEdge puts an edge before the current node and starts the node of the
// goroutine that feeds it.
func (r *monRun) addEdge(kind string, capacity int) *monEdge {
	e := &monEdge{kind: kind, cap: capacity}
	r.edges = append(r.edges, e)
	r.newNode("stage")
	return e
}

// member adds a fused stage to the current node and returns its count.
func (r *monRun) member(kind, name string) *monMember {
	mb := &monMember{kind: kind, name: name}
	mb.c.shared = r.cur.shared
	mb.c.same = kind == "map"
	r.cur.members = append(r.cur.members, mb)
	r.members = append(r.members, mb)
	return mb
}

// share marks the current node as driven by more than one goroutine (a Batch
// with a maxWait is in it): its counts go straight to the atomics.
func (r *monRun) share() {
	n := r.cur
	n.shared = true
	n.count.shared = true
	for _, c := range n.extra {
		c.shared = true
	}
	for _, mb := range n.members {
		mb.c.shared = true
	}
}

// built finishes the graph once the description is wired: it names the
// nodes, puts everything in flow order and makes the first node the source.
func (r *monRun) built(m *Monitor) {
	head := r.cur
	if tail := r.nodes[1]; !r.nodes[0].timed && len(tail.members) > 0 && r.dropSink != nil {
		// Collect's and All's sinks fused with the last stage.
		r.dropSink()
		r.nodes[0].from = tail.members[0]
	}
	if len(head.members) == 0 && head.kind == "stage" {
		head.kind, head.name = "source", "source"
	} else {
		// The source is fused with the first stages: it gets a node of
		// its own, with no time of its own, counted by the first stage.
		src := &monNode{kind: "source", name: "source", from: head.members[len(head.members)-1]}
		r.nodes = append(r.nodes, src)
		r.edges = append(r.edges, &monEdge{kind: "fused"})
		r.cur = src
	}
	reverse(r.nodes)
	reverse(r.edges)
	reverse(r.members)
	// The members of each node stay back to front: goroutines of the run
	// may already be running (pipes and pools start theirs as they are
	// wired) and read them when they publish. Snapshot reads them backwards.
	for i, mb := range r.members {
		if mb.name == "" {
			mb.name = mb.kind + "#" + itoa(i+1)
		}
	}
	now := time.Now()
	m.mu.Lock()
	for _, n := range r.nodes {
		n.lastMove = now
	}
	r.ready = true
	m.mu.Unlock()
}

// monSource returns the count the loop feeding the run keeps and the wait
// of its goroutine for input, or nils when the run is not monitored. queue,
// when not nil, reports Run's input channel.
func (r *stageRun) monSource(queue func() (int, int)) (*monCount, *monWait) {
	if r.mon == nil {
		return nil, nil
	}
	src := r.mon.nodes[0]
	if queue != nil {
		src.queue.Store(&queue)
	}
	if src.timed {
		return &src.count, &src.in
	}
	return nil, &r.mon.nodes[1].in
}

// monDone ends the run's record once every goroutine of the run has
// exited, so the plain counts can be read from here.
func (r *stageRun) monDone() {
	mr := r.mon
	if mr == nil || mr.done {
		return
	}
	mr.done = true
	m := mr.m
	for _, n := range mr.nodes {
		n.publishAll()
	}
	if err := r.result(); err != nil {
		s := err.Error()
		mr.failed.Store(&s)
	}
	mr.ended.Store(int64(time.Since(mr.start)) | 1)
	m.mu.Lock()
	mr.finished = true
	m.mu.Unlock()
	m.finishRun(mr)
}

// A monAttacher is a sink a monitored run can end in: the output of Run,
// Collect or All.
type monAttacher interface {
	monEnd() bool // the sink really ends the run
	monAttach(r *monRun)
}

func reverse[T any](s []T) {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// monMember adds a fused stage to the node being wired, or returns nil when
// the run is not monitored.
func (r *stageRun) monMember(kind, name string) *monMember {
	if r.mon == nil {
		return nil
	}
	return r.mon.member(kind, name)
}

// fail counts an error of the stage; mb may be nil.
func (mb *monMember) fail() {
	if mb != nil {
		mb.errors.Add(1)
	}
}

// sinkNode adds the sink of a run, which the goroutine wired next feeds
// through an edge of kind; that goroutine keeps the sink's count.
func (r *monRun) sinkNode(name, kind string) *monEdge {
	sink := r.newNode("sink")
	sink.name, sink.timed = name, false
	e := r.addEdge(kind, 0)
	r.cur.extra = append(r.cur.extra, &sink.count)
	return e
}
