package conc

import (
	"fmt"
	"reflect"
	"sync"
	"time"
)

// A Monitor watches a running program: the pipeline runs started through
// Monitored, and the Pools, Breakers, Limiters, KeyedLimiters, Brokers and
// FanIns given to Watch. Snapshot returns what it sees as a plain struct
// (with stable JSON field names), WriteText as a compact table, and the
// viz sub-package serves it as a live page.
//
// Nothing is watched implicitly: there is no global registry, only what is
// attached to a Monitor. A Monitor starts no goroutine at all; everything
// that depends on time (rates over the recent window, stall detection) is
// worked out when Snapshot is called, from the counters the watched code
// keeps and the previous snapshots. Rates and stall flags are therefore as
// fresh as the snapshots are frequent; the viz page asks twice a second.
//
// Create one with NewMonitor; the zero value is not usable. A Monitor is safe
// for concurrent use.
type Monitor struct {
	stallAfter time.Duration
	window     time.Duration

	mu      sync.Mutex
	runs    []*monRun // live runs, then the last finished run of each name
	watched []*monWatched
	seq     map[string]int // runs started per pipeline name
}

// A MonitorOption configures NewMonitor.
type MonitorOption interface {
	applyMonitor(*Monitor)
}

type monitorOptionFunc func(*Monitor)

func (f monitorOptionFunc) applyMonitor(m *Monitor) { f(m) }

// StallAfter sets how long something that holds pending work may go without
// progress before the snapshot flags it as stalled (10s by default). It
// panics with a conc: message if d is not positive.
func StallAfter(d time.Duration) MonitorOption {
	if d <= 0 {
		panic(fmt.Sprintf("conc: StallAfter must be positive, got %v", d))
	}
	return monitorOptionFunc(func(m *Monitor) { m.stallAfter = d })
}

// RecentWindow sets the span of the recent figures in a snapshot: rates and
// the busy, backpressured and idle split over about the last d (5s by
// default). It panics with a conc: message if d is not positive.
func RecentWindow(d time.Duration) MonitorOption {
	if d <= 0 {
		panic(fmt.Sprintf("conc: RecentWindow must be positive, got %v", d))
	}
	return monitorOptionFunc(func(m *Monitor) { m.window = d })
}

// NewMonitor returns a Monitor with nothing attached. It panics with a conc:
// message if an option is nil.
func NewMonitor(opts ...MonitorOption) *Monitor {
	m := &Monitor{stallAfter: 10 * time.Second, window: 5 * time.Second, seq: map[string]int{}}
	for i, o := range opts {
		checkOption("NewMonitor", i, o == nil)
		o.applyMonitor(m)
	}
	return m
}

// Monitored returns a Stage that runs s and reports every run of it to m
// under name: each stage's workers, counters, time split and stalls, and the
// buffers between them (see PipelineSnapshot). It must wrap the whole
// pipeline passed to Run, Collect or All; starting a chain in which a
// Monitored stage is followed by further stages panics with a conc:
// message. A Monitored inside another counts for the outer one only.
//
// An unmonitored run pays nothing for this; a monitored one keeps its
// counters in plain fields published every few items, reads the clock only
// when a goroutine of the run is about to block, and allocates per run, not
// per item. It panics with a conc: message if m is nil or s is the zero
// Stage.
func Monitored[T, U any](m *Monitor, name string, s Stage[T, U]) Stage[T, U] {
	if m == nil {
		panic("conc: Monitored needs a Monitor, got nil")
	}
	s.check()
	var blocks func(r *stageRun, next stageBlockSink[U]) stageBlockSink[T]
	if s.blocks != nil {
		blocks = func(r *stageRun, next stageBlockSink[U]) stageBlockSink[T] {
			return monBuild(m, name, r, next, s.blocks)
		}
	}
	return Stage[T, U]{
		build: func(r *stageRun, next stageSink[U]) stageSink[T] {
			return monBuild(m, name, r, next, s.build)
		},
		blocks: blocks,
		inline: s.inline,
		buffer: s.buffer,
	}
}

// monBuild wires a monitored stage with build, per item or per block: it
// starts the run's record, attaches the sink the run ends in and finishes
// the graph once the stages are wired.
func monBuild[In, Out any](m *Monitor, name string, r *stageRun, next Out, build func(*stageRun, Out) In) In {
	if r.mon != nil {
		return build(r, next)
	}
	a, ok := any(next).(monAttacher)
	if !ok || !a.monEnd() {
		panic("conc: Monitored must wrap the whole pipeline given to Run, Collect or All")
	}
	mr := m.startRun(name)
	r.mon = mr
	a.monAttach(mr)
	head := build(r, next)
	mr.built(m)
	return head
}

// Watch adds x to what m reports, under name: a *Pool (any job and result
// types), *Breaker, *Limiter, *KeyedLimiter (any key type), *Broker (any
// event type) or *FanIn (any item type). The monitor reads x only through
// its Stats method, when a snapshot is taken; a *Limiter is the one
// exception, as Watch turns its call counting on (LimiterCounts), so its
// allowed and denied counts start at Watch. Watching a name again
// replaces what was watched under it. Watch panics with a conc: message
// for a nil x (or a nil pointer) or a type it cannot watch.
func (m *Monitor) Watch(name string, x any) {
	if v := reflect.ValueOf(x); v.Kind() == reflect.Pointer && v.IsNil() {
		panic(fmt.Sprintf("conc: Monitor.Watch needs a value, got a nil %T", x))
	}
	w := &monWatched{name: name, lastMove: time.Now()}
	switch v := x.(type) {
	case nil:
		panic("conc: Monitor.Watch needs a value, got nil")
	case monPool:
		w.kind, w.pool = "pool", v
	case *Breaker:
		w.kind, w.breaker = "breaker", v
	case *Limiter:
		w.kind, w.limiter = "limiter", v
		v.countCalls() // a Limiter counts only when asked: see LimiterStats
	case interface{ Stats() KeyedLimiterStats }:
		w.kind, w.keyed = "keyed_limiter", v
	case interface{ Stats() BrokerStats }:
		w.kind, w.broker = "broker", v
		w.subs, _ = v.(interface{ AppendSubStats([]SubStats) []SubStats })
	case interface{ Stats() FanInStats }:
		w.kind, w.fanIn = "fan_in", v
	default:
		panic(fmt.Sprintf("conc: Monitor.Watch cannot watch a %T", x))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, o := range m.watched {
		if o.name == name {
			m.watched[i] = w
			return
		}
	}
	m.watched = append(m.watched, w)
}

// Unwatch removes what was watched under name, if anything.
func (m *Monitor) Unwatch(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, o := range m.watched {
		if o.name == name {
			m.watched = append(m.watched[:i], m.watched[i+1:]...)
			return
		}
	}
}

// monPool is what Watch needs of a *Pool: Stats, and the queue size, which
// Stats does not report.
type monPool interface {
	Stats() PoolStats
	queueSize() int
}

// queueSize is how many jobs may wait (QueueSize; 0 for the direct
// hand-off). It reads limit, which never changes after NewPool, and not the
// ring, which grows under the pool's mutex.
func (p *Pool[J, R]) queueSize() int { return p.limit }

// startRun registers a new run of the pipeline name.
func (m *Monitor) startRun(name string) *monRun {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq[name]++
	r := &monRun{m: m, name: name, seq: m.seq[name], start: time.Now()}
	m.runs = append(m.runs, r)
	return r
}

// finishRun keeps a finished run visible until the next run of the same
// name finishes, so a page still shows a pipeline that has just ended
// without finished runs piling up.
func (m *Monitor) finishRun(r *monRun) {
	m.mu.Lock()
	defer m.mu.Unlock()
	keep := m.runs[:0]
	for _, o := range m.runs {
		if o == r || !o.finished || o.name != r.name {
			keep = append(keep, o)
		}
	}
	clear(m.runs[len(keep):])
	m.runs = keep
}
