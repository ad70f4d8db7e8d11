package conc

import (
	"errors"
	"io"
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

func TestCallRecoversTypedFunctions(t *testing.T) {
	fn := func(_ struct{}, v int) (int, error) {
		if v < 0 {
			panic("negative")
		}
		return v * 2, nil
	}
	got, err := call(fn, struct{}{}, 21)
	require.NoError(t, err)
	assert.Equal(t, 42, got)
	_, err = call(fn, struct{}{}, -1)
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
