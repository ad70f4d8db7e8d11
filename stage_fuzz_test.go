package conc

import (
	"context"
	"slices"
	"testing"
)

// FuzzStageComposition decodes the fuzzer's bytes into a chain of Map,
// Filter and FlatMap stages with worker counts, Ordered and Buffer options,
// and an input length, and checks that Collect, All and Run all agree with
// the plain sequential loop: the same multiset of outputs, and the same
// sequence when every parallel stage is ordered.
//
// Layout: byte 0 sets the input length (0..764); then each group of three
// bytes is one stage: kind and buffer; parameter; workers and Ordered. At
// most six stages are read.
func FuzzStageComposition(f *testing.F) {
	f.Add([]byte{10, 0, 1, 0x01})
	f.Add([]byte{200, 0, 1, 0x13, 1, 2, 0x02, 2, 2, 0x11})
	f.Add([]byte{255, 0x22, 4, 0x03, 0x11, 0, 0x10, 2, 1, 0x13, 0, 3, 0x00})
	f.Add([]byte{0, 2, 0, 0x03})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 {
			return
		}
		n := int(data[0]) * 3
		var specs []stageSpec
		for g := data[1:]; len(g) >= 3 && len(specs) < 6; g = g[3:] {
			specs = append(specs, stageSpec{
				kind:    int(g[0]&0x0f) % 3,
				buffer:  int(g[0]>>4) * 5,
				param:   int(g[1]) % 5,
				workers: 1 + int(g[2]&0x0f)%4,
				ordered: g[2]&0x10 != 0,
			})
		}
		in := make([]int, n)
		for i := range in {
			in[i] = i * 7 % 1000
		}
		stageCheckComposition(t, specs, in)
	})
}

// FuzzBatchKeepsEveryItemInOrder checks Batch without a time limit, alone
// and behind a pool, for any size and input length: the batches
// concatenate to the input, and every batch but the last is full.
func FuzzBatchKeepsEveryItemInOrder(f *testing.F) {
	f.Add(uint8(3), uint16(10), false)
	f.Add(uint8(1), uint16(0), true)
	f.Add(uint8(64), uint16(1000), true)
	f.Fuzz(func(t *testing.T, size uint8, n uint16, pooled bool) {
		if size == 0 {
			return
		}
		var first Stage[int, int] = Map(stageIdentity)
		if pooled {
			first = Map(stageIdentity, Workers(3), Ordered())
		}
		got, err := Collect(context.Background(), Then(first, Batch[int](int(size), 0)), stageInts(int(n)))
		if err != nil {
			t.Fatal(err)
		}
		var flat []int
		for i, b := range got {
			if len(b) == 0 || len(b) > int(size) || (i < len(got)-1 && len(b) != int(size)) {
				t.Fatalf("batch %d of %d has %d items, size %d", i, len(got), len(b), size)
			}
			flat = append(flat, b...)
		}
		if !slices.Equal(flat, slices.Collect(stageInts(int(n)))) {
			t.Fatalf("batches do not concatenate to the input")
		}
	})
}
