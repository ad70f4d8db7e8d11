package conc

import (
	"context"
	"go/ast"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A nil context is a programmer error: every function that takes one
// panics with a conc: message when it is passed, even where the context
// would only have been consulted later (a full Block subscriber, a channel
// that is not ready, a limiter that must wait) or not at all.
func TestNilContextPanicsAtTheCall(t *testing.T) {
	var nilCtx context.Context
	ready := make(chan int, 1)
	ready <- 1
	room := make(chan int, 1)
	fn := func(context.Context) error { return nil }
	fnV := func(context.Context) (int, error) { return 1, nil }
	id := Map(func(_ context.Context, v int) (int, error) { return v, nil })
	const want = "conc: context must not be nil"
	cases := map[string]func(){
		"All":                func() { All(nilCtx, id, func(func(int) bool) {}) },
		"Collect":            func() { _, _ = Collect(nilCtx, id, func(func(int) bool) {}) },
		"Stage.Run":          func() { id.Run(nilCtx, ready) },
		"From":               func() { From(nilCtx, 1) },
		"Broker.Publish":     func() { b := NewBroker[int](); defer b.Close(); _ = b.Publish(nilCtx, "t", 1) },
		"Breaker.Execute":    func() { _ = NewBreaker().Execute(nilCtx, fn) },
		"ExecuteValue":       func() { _, _ = ExecuteValue(nilCtx, NewBreaker(), fnV) },
		"Limiter.Wait":       func() { _ = NewLimiter(Inf, 1).Wait(nilCtx) },
		"KeyedLimiter.Wait":  func() { _ = NewKeyedLimiter[string](Inf, 1).Wait(nilCtx, "k") },
		"Retry":              func() { _ = Retry(nilCtx, fn) },
		"RetryValue":         func() { _, _ = RetryValue(nilCtx, fnV) },
		"RetryPolicy.Do":     func() { _ = NewRetryPolicy().Do(nilCtx, fn) },
		"Send":               func() { _ = Send(nilCtx, room, 1) },
		"Recv":               func() { _, _ = Recv(nilCtx, (<-chan int)(ready)) },
		"Race":               func() { _, _ = Race(nilCtx, fnV) },
		"OrContext":          func() { OrContext(nilCtx, (<-chan int)(ready)) },
		"OrDone":             func() { OrDone(nilCtx, (<-chan int)(ready)) },
		"Shutdown.Run":       func() { _ = NewShutdown().Run(nilCtx) },
		"MapN":               func() { _, _ = MapN(nilCtx, []int{1}, 1, fnVItem) },
		"ForEach":            func() { _ = ForEach(nilCtx, func(func(int) bool) {}, 1, fnItem) },
		"MapAll":             func() { _, _ = MapAll(nilCtx, []int{1}, 1, fnVItem) },
		"ForEachAll":         func() { _ = ForEachAll(nilCtx, func(func(int) bool) {}, 1, fnItem) },
		"FromSeq":            func() { FromSeq(nilCtx, func(func(int) bool) {}) },
		"Limiter.WaitN":      func() { _ = NewLimiter(Inf, 1).WaitN(nilCtx, 1) },
		"KeyedLimiter.WaitN": func() { _ = NewKeyedLimiter[string](Inf, 1).WaitN(nilCtx, "k", 1) },
		"Pool.Submit": func() {
			p := NewPool(1, double)
			defer p.Close()
			_ = p.Submit(nilCtx, 1)
		},
		"Pool.Stop": func() {
			p := NewPool(1, double)
			defer p.Close()
			_ = p.Stop(nilCtx)
		},
	}
	// The fan-in and fan-out constructors, with the same message.
	named := map[string]func(){
		"Merge":             func() { Merge(nilCtx, (<-chan int)(ready)) },
		"NewFanIn":          func() { NewFanIn[int](nilCtx) },
		"FanOut":            func() { FanOut(nilCtx, (<-chan int)(ready), 2) },
		"Tee":               func() { Tee(nilCtx, (<-chan int)(ready), 2) },
		"Partition":         func() { Partition(nilCtx, (<-chan int)(ready), 2, func(v int) int { return v }) },
		"Subscription.Next": func() { b := NewBroker[int](); defer b.Close(); _, _ = b.Subscribe("t").Next(nilCtx) },
		"Subscription.NextBatch": func() {
			b := NewBroker[int]()
			defer b.Close()
			_, _ = b.Subscribe("t").NextBatch(nilCtx, make([]int, 1))
		},
		"Subscription.Events": func() { b := NewBroker[int](); defer b.Close(); b.Subscribe("t").Events(nilCtx) },
	}
	for name, call := range cases {
		assert.PanicsWithValue(t, want, call, name)
	}
	for name, call := range named {
		assert.PanicsWithValue(t, want, call, name)
	}
	// Nothing was consumed from the channels by a call that panicked.
	assert.Len(t, ready, 1)
	assert.Empty(t, room)

	// Every exported function and method that takes a context has a case.
	// Before this check, Pool.Submit, Pool.Stop, KeyedLimiter.WaitN, FanOut,
	// Tee, Partition and five more were missing (issue 13 §1.8).
	for _, name := range exportedFuncsTakingContext(t) {
		_, plain := cases[name]
		_, self := named[name]
		assert.True(t, plain || self, "%s takes a context but TestNilContextPanicsAtTheCall has no case for it", name)
	}
}

// exportedFuncsTakingContext lists, from the package's source, every
// exported function, and every exported method of an exported type, that
// has a parameter of type context.Context, as "Func" or "Type.Method".
func exportedFuncsTakingContext(t *testing.T) []string {
	var names []string
	for _, f := range parsePackage(t) {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || !fd.Name.IsExported() || !takesContext(fd.Type.Params) {
				continue
			}
			name := fd.Name.Name
			if fd.Recv != nil {
				recv := receiverName(fd.Recv.List[0].Type)
				if !ast.IsExported(recv) {
					continue
				}
				name = recv + "." + name
			}
			names = append(names, name)
		}
	}
	require.NotEmpty(t, names)
	return names
}

// takesContext reports whether a parameter list has a context.Context
// parameter of its own (not one inside a function type).
func takesContext(params *ast.FieldList) bool {
	for _, p := range params.List {
		if sel, ok := p.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "Context" {
			if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "context" {
				return true
			}
		}
	}
	return false
}

// receiverName is the type name of a receiver: T, *T, T[A] or *T[A, B].
func receiverName(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}

func fnItem(context.Context, int) error         { return nil }
func fnVItem(context.Context, int) (int, error) { return 0, nil }
