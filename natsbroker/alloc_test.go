package natsbroker_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/concpatterns/conc/natsbroker"
)

// seqCodec encodes an Event by appending to the buffer it is given, so
// that it allocates nothing when encoding.
type seqCodec struct{}

func (seqCodec) Marshal(buf []byte, e Event) ([]byte, error) {
	buf = strconv.AppendInt(buf, int64(e.Pub), 10)
	buf = append(buf, ' ')
	return strconv.AppendInt(buf, int64(e.Seq), 10), nil
}

func (seqCodec) Unmarshal(data []byte, e *Event) error {
	_, err := fmt.Sscan(string(data), &e.Pub, &e.Seq)
	return err
}

// Publish allocates nothing beyond what the codec allocates: with a codec
// that appends in place, nothing at all.
func TestPublishDoesNotAllocateBeyondTheCodec(t *testing.T) {
	srv := startServer(t, -1, 0)
	b := natsbroker.New[Event](connect(t, srv), natsbroker.WithCodec[Event](seqCodec{}))
	defer b.Close()
	ctx := context.Background()
	for i := range 100 { // warm the buffers
		_ = b.Publish(ctx, "alloc.t", Event{Seq: i})
	}
	allocs := testing.AllocsPerRun(1000, func() {
		_ = b.Publish(ctx, "alloc.t", Event{Seq: 12345})
	})
	assert.Zero(t, allocs)
}
