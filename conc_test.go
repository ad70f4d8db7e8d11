package conc

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestMain fails the test binary if any goroutine is still running once all
// tests (internal and external, examples included) have finished.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestPanicErrorUnwrapsErrorValues(t *testing.T) {
	err := protect(func() error { panic(io.ErrUnexpectedEOF) })
	var pe *PanicError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, io.ErrUnexpectedEOF, pe.Value)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	assert.Contains(t, string(pe.Stack), "TestPanicErrorUnwrapsErrorValues")
	assert.Equal(t, "conc: panic: unexpected EOF", err.Error())
}

func TestPanicErrorWithNonErrorValueUnwrapsToNil(t *testing.T) {
	err := protect(func() error { panic("boom") })
	var pe *PanicError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "boom", pe.Value)
	assert.Nil(t, pe.Unwrap())
}

func TestProtectPassesErrorsThrough(t *testing.T) {
	want := errors.New("plain")
	assert.Equal(t, want, protect(func() error { return want }))
	assert.NoError(t, protect(func() error { return nil }))
}

func TestProtectRecoversTypedFunctions(t *testing.T) {
	fn := func(_ struct{}, v int) (int, error) {
		if v < 0 {
			panic("negative")
		}
		return v * 2, nil
	}
	call := func(v int) (got int, err error) {
		err = protect(func() (err error) {
			got, err = fn(struct{}{}, v)
			return err
		})
		return got, err
	}
	got, err := call(21)
	require.NoError(t, err)
	assert.Equal(t, 42, got)
	_, err = call(-1)
	var pe *PanicError
	assert.ErrorAs(t, err, &pe)
}

func TestConstructorChecksPanicWithConcPrefix(t *testing.T) {
	assert.PanicsWithValue(t, "conc: workers must be at least 1, got 0", func() { checkPositive("workers", 0) })
	assert.PanicsWithValue(t, "conc: buffer must not be negative, got -1", func() { checkNonNegative("buffer", -1) })
	assert.PanicsWithValue(t, "conc: fn must not be nil", func() { checkFunc("fn", true) })
	assert.PanicsWithValue(t, "conc: size must be at most 8, got 9", func() { checkAtMost("size", 9, 8) })
	assert.NotPanics(t, func() { checkPositive("workers", 1); checkNonNegative("buffer", 0); checkFunc("fn", false) })
	assert.NotPanics(t, func() { checkAtMost("size", 8, 8) })
}

// A panic whose value is context.Canceled or DeadlineExceeded, raised after
// the caller's ctx is done, is still a panic: every runner reports it as a
// *PanicError with its stack, never as the context's error it unwraps to
// (issue 13 §1.1; contract 2 in docs/ARCHITECTURE.md).
func TestPanicOfContextErrorAfterCancelStaysPanicError(t *testing.T) {
	// run calls fn once, on the item 1, through one runner.
	runners := []struct {
		name string
		run  func(ctx context.Context, fn func(context.Context, int) (int, error)) error
	}{
		{"MapN", func(ctx context.Context, fn func(context.Context, int) (int, error)) error {
			_, err := MapN(ctx, []int{1}, 1, fn)
			return err
		}},
		{"MapAll", func(ctx context.Context, fn func(context.Context, int) (int, error)) error {
			_, err := MapAll(ctx, []int{1}, 1, fn)
			return err
		}},
		{"ForEach", func(ctx context.Context, fn func(context.Context, int) (int, error)) error {
			return ForEach(ctx, slices.Values([]int{1}), 1, func(ctx context.Context, v int) error {
				_, err := fn(ctx, v)
				return err
			})
		}},
		{"ForEachAll", func(ctx context.Context, fn func(context.Context, int) (int, error)) error {
			return ForEachAll(ctx, slices.Values([]int{1}), 1, func(ctx context.Context, v int) error {
				_, err := fn(ctx, v)
				return err
			})
		}},
		{"Collect", func(ctx context.Context, fn func(context.Context, int) (int, error)) error {
			_, err := Collect(ctx, Map(fn), slices.Values([]int{1}))
			return err
		}},
		{"All", func(ctx context.Context, fn func(context.Context, int) (int, error)) error {
			var last error
			for _, err := range All(ctx, Map(fn), slices.Values([]int{1})) {
				last = err
			}
			return last
		}},
		{"Run", func(ctx context.Context, fn func(context.Context, int) (int, error)) error {
			in := make(chan int, 1)
			in <- 1
			close(in)
			out, wait := Map(fn).Run(ctx, in)
			for range out {
			}
			return wait()
		}},
	}
	for _, value := range []error{context.Canceled, context.DeadlineExceeded} {
		for _, r := range runners {
			t.Run(r.name+"/"+value.Error(), func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				err := r.run(ctx, func(context.Context, int) (int, error) {
					cancel()
					panic(value)
				})
				var pe *PanicError
				require.ErrorAs(t, err, &pe)
				assert.Equal(t, value, pe.Value)
				assert.NotEmpty(t, pe.Stack)
			})
		}
	}
}

func TestCtxErr(t *testing.T) {
	custom := errors.New("custom")
	wrapped := errors.Join(context.Canceled, custom)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.Same(t, context.Canceled, ctxErr(ctx), "plain cancel: ctx.Err itself")

	ctx, cancelCause := context.WithCancelCause(context.Background())
	cancelCause(custom)
	err := ctxErr(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, err, custom)
	assert.Equal(t, "context canceled: custom", err.Error())

	ctx, cancelCause = context.WithCancelCause(context.Background())
	cancelCause(wrapped)
	assert.Equal(t, wrapped, ctxErr(ctx), "a cause that wraps ctx.Err is kept as is")

	assert.NoError(t, ctxErr(context.Background()))
}
