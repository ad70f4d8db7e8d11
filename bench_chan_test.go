package conc

import (
	"context"
	"testing"
)

// BenchmarkSendRecv passes b.N ints from one goroutine to another, each
// side watching a cancellable context. One op is one item sent and
// received. conc uses Send and Recv; chan is the select a tutorial writes
// on both sides (the value or ctx.Done()); direct is the bare send and
// receive, which cannot be cancelled: the floor. There is no mutex
// version: Send and Recv are operations on a channel the caller owns.
func BenchmarkSendRecv(b *testing.B) {
	for _, size := range []int{0, 64} {
		w := "unbuffered"
		if size > 0 {
			w = "buf=64"
		}
		for _, impl := range []string{"conc", "chan", "direct"} {
			b.Run(w+"/"+impl, func(b *testing.B) {
				b.ReportAllocs()
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				ch := make(chan int, size)
				b.ResetTimer()
				go sendRecvProducer(ctx, impl, ch, b.N)
				sum := 0
				switch impl {
				case "conc":
					for {
						v, err := Recv(ctx, ch)
						if err != nil {
							break
						}
						sum += v
					}
				case "chan":
				loop:
					for {
						select {
						case v, ok := <-ch:
							if !ok {
								break loop
							}
							sum += v
						case <-ctx.Done():
							break loop
						}
					}
				default:
					for v := range ch {
						sum += v
					}
				}
				sink.Add(int64(sum))
			})
		}
	}
}

// sendRecvProducer sends 0..n-1 on ch the way impl does, then closes it.
func sendRecvProducer(ctx context.Context, impl string, ch chan int, n int) {
	defer close(ch)
	switch impl {
	case "conc":
		for i := range n {
			if Send(ctx, ch, i) != nil {
				return
			}
		}
	case "chan":
		for i := range n {
			select {
			case ch <- i:
			case <-ctx.Done():
				return
			}
		}
	default:
		for i := range n {
			ch <- i
		}
	}
}
