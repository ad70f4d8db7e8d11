package conc_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/concpatterns/conc"
)

// MapN runs at most two calls at once; out[i] belongs to items[i].
func ExampleMapN() {
	words := []string{"pool", "map", "each"}
	upper := func(_ context.Context, w string) (string, error) {
		return strings.ToUpper(w), nil
	}
	out, err := conc.MapN(context.Background(), words, 2, upper)
	fmt.Println(out, err)
	// Output: [POOL MAP EACH] <nil>
}

// MapAll keeps going after a failure and reports every failed index.
func ExampleMapAll() {
	digits := []int{1, 0, 4, 0}
	divide := func(_ context.Context, d int) (int, error) {
		if d == 0 {
			return 0, errors.New("division by zero")
		}
		return 12 / d, nil
	}
	quotients, err := conc.MapAll(context.Background(), digits, 2, divide)
	fmt.Println(quotients)
	fmt.Println(err)
	// Output:
	// [12 0 3 0]
	// conc: item 1: division by zero
	// conc: item 3: division by zero
}

// ForEach reads any iter.Seq and stops at the first error.
func ExampleForEach() {
	sizes := map[string]int{"a.txt": 10, "b.txt": 20, "c.txt": 30}
	var mu sync.Mutex
	total := 0
	add := func(_ context.Context, name string) error {
		mu.Lock()
		defer mu.Unlock()
		total += sizes[name]
		return nil
	}
	err := conc.ForEach(context.Background(), maps.Keys(sizes), 2, add)
	fmt.Println(total, err)
	fmt.Println(slices.Sorted(maps.Keys(sizes)))
	// Output:
	// 60 <nil>
	// [a.txt b.txt c.txt]
}
