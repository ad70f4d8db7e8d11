package httplimit

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestCeilSecondsRoundsUpWithoutOverflow(t *testing.T) {
	cases := []struct {
		d    time.Duration
		want int64
	}{
		{0, 0},
		{1, 1},
		{time.Second - 1, 1},
		{time.Second, 1},
		{time.Second + 1, 2},
		{90 * time.Second, 90},
		{math.MaxInt64, math.MaxInt64/int64(time.Second) + 1},
		{math.MaxInt64 - time.Second + 2, math.MaxInt64 / int64(time.Second)},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, ceilSeconds(c.d), "ceilSeconds(%d)", int64(c.d))
	}
}
