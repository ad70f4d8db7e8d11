package conc_test

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/concpatterns/conc"
)

// mergeGen returns a channel carrying items, closed after the last one.
func mergeGen[T any](items ...T) <-chan T {
	c := make(chan T)
	go func() {
		defer close(c)
		for _, v := range items {
			c <- v
		}
	}()
	return c
}

// Merge two streams into one. Items of different inputs interleave in no
// set order, so the example sorts what it received.
func ExampleMerge() {
	ctx := context.Background()
	evens := mergeGen(0, 2, 4)
	odds := mergeGen(1, 3, 5)

	var got []int
	for v := range conc.Merge(ctx, evens, odds) {
		got = append(got, v)
	}
	slices.Sort(got)
	fmt.Println(got)
	// Output: [0 1 2 3 4 5]
}

// A FanIn merges inputs that are discovered while it runs, here one per
// shard. Seal says that no more will come; Out closes once every added
// input is drained.
func ExampleFanIn() {
	ctx := context.Background()
	f := conc.NewFanIn[string](ctx)
	for _, shard := range []string{"a", "b", "c"} {
		if err := f.Add(mergeGen(shard+"1", shard+"2")); err != nil {
			fmt.Println(err)
		}
	}
	f.Seal()
	late := make(chan string)
	fmt.Println(f.Add(late)) // rejected: late is never read
	close(late)

	var got []string
	for v := range f.Out() {
		got = append(got, v)
	}
	slices.Sort(got)
	fmt.Println(got)
	fmt.Printf("%+v\n", f.Stats())
	// Output:
	// conc: closed
	// [a1 a2 b1 b2 c1 c2]
	// {Inputs:3 Open:0 Forwarded:6 Dropped:0}
}

// Partition keeps the items of one key together and in order: here every
// word goes to the output of its first letter's hash, so each output sees
// "apple" before "avocado" if it holds the a-words.
func ExamplePartition() {
	ctx := context.Background()
	words := mergeGen("apple", "banana", "avocado", "blueberry", "cherry")
	outs, wait := conc.Partition(ctx, words, 2, func(w string) byte { return w[0] })

	groups := make([][]string, len(outs))
	done := make(chan int)
	for i, out := range outs {
		go func() {
			for w := range out {
				groups[i] = append(groups[i], w)
			}
			done <- i
		}()
	}
	for range outs {
		<-done
	}
	if err := wait(); err != nil {
		fmt.Println(err)
	}
	// Which output a letter lands on varies from run to run; the grouping
	// and the order within a letter do not.
	var lines []string
	for _, g := range groups {
		for _, letter := range []byte("abc") {
			var same []string
			for _, w := range g {
				if w[0] == letter {
					same = append(same, w)
				}
			}
			if same != nil {
				lines = append(lines, strings.Join(same, " "))
			}
		}
	}
	slices.Sort(lines)
	fmt.Println(strings.Join(lines, "\n"))
	// Output:
	// apple avocado
	// banana blueberry
	// cherry
}

// Tee hands every item to each output: here one copy is summed, the other
// counted. A slow output would stall the other, so both are read together.
func ExampleTee() {
	ctx := context.Background()
	outs := conc.Tee(ctx, mergeGen(1, 2, 3, 4), 2)

	sum := make(chan int)
	go func() {
		s := 0
		for v := range outs[0] {
			s += v
		}
		sum <- s
	}()
	n := 0
	for range outs[1] {
		n++
	}
	fmt.Println("sum", <-sum, "count", n)
	// Output: sum 10 count 4
}
