package conc_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/concpatterns/conc"
)

// A pipeline is built from typed stages and run over an iter.Seq with
// Collect. Stages with one worker run fused on the caller's goroutine;
// Workers(4) with Ordered spreads the parse over four goroutines and keeps
// the input order.
func ExampleMap() {
	parse := conc.Map(func(_ context.Context, s string) (int, error) {
		return strconv.Atoi(strings.TrimSpace(s))
	}, conc.Workers(4), conc.Ordered(), conc.Named("parse"))
	odd := conc.Filter(func(_ context.Context, n int) (bool, error) { return n%2 == 1, nil })
	square := conc.Map(func(_ context.Context, n int) (int, error) { return n * n, nil })

	pipeline := conc.Then(conc.Then(parse, odd), square)

	got, err := conc.Collect(context.Background(), pipeline, slices.Values([]string{"1", " 2", "3 ", "4", "5"}))
	fmt.Println(got, err)

	_, err = conc.Collect(context.Background(), pipeline, slices.Values([]string{"1", "two"}))
	fmt.Println(err)
	// Output:
	// [1 9 25] <nil>
	// conc: stage parse: strconv.Atoi: parsing "two": invalid syntax
}

// Run connects a stage to channels: out closes when the input is drained,
// and wait reports the first error once every goroutine has exited.
func ExampleStage_Run() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // stops the run early if the loop below ever returns early

	words := conc.FlatMap(func(_ context.Context, line string) ([]string, error) {
		return strings.Fields(line), nil
	})
	out, wait := words.Run(ctx, conc.From(ctx, "a b", "c", "", "d e f"))
	var got []string
	for w := range out {
		got = append(got, w)
	}
	fmt.Println(got, wait())
	// Output:
	// [a b c d e f] <nil>
}

// All ranges over a pipeline's output; breaking out of the loop stops the
// run and leaves no goroutine behind.
func ExampleAll() {
	batches := conc.Batch[int](3, 0)
	for b, err := range conc.All(context.Background(), batches, slices.Values([]int{1, 2, 3, 4, 5, 6, 7, 8})) {
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		fmt.Println(b)
		if b[0] > 3 {
			break
		}
	}
	// Output:
	// [1 2 3]
	// [4 5 6]
}
