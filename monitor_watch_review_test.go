package conc

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A nil pointer of a watchable type is a programmer error like nil itself:
// Watch panics with a conc: message. Before, a nil *Breaker or *Limiter was
// silently never shown, and a nil *Pool, *Broker, *KeyedLimiter or *FanIn
// made every later Snapshot panic with a nil dereference (inside the viz
// handler, say).
func TestMonitorWatchRefusesNilPointers(t *testing.T) {
	for name, x := range map[string]any{
		"Breaker":      (*Breaker)(nil),
		"Limiter":      (*Limiter)(nil),
		"Pool":         (*Pool[int, int])(nil),
		"Broker":       (*Broker[int])(nil),
		"KeyedLimiter": (*KeyedLimiter[string])(nil),
		"FanIn":        (*FanIn[int])(nil),
	} {
		t.Run(name, func(t *testing.T) {
			m := NewMonitor()
			require.PanicsWithValue(t, "conc: Monitor.Watch needs a value, got a nil *conc."+name+typeArgs(name), func() { m.Watch("x", x) })
			require.NotPanics(t, func() { m.Snapshot() })
		})
	}
}

func typeArgs(name string) string {
	switch name {
	case "Pool":
		return "[int,int]"
	case "Broker", "FanIn":
		return "[int]"
	case "KeyedLimiter":
		return "[string]"
	}
	return ""
}
