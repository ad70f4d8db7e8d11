// Package peers benchmarks conc against the libraries Go programmers use
// today for the same jobs. It is a separate module so that none of those
// libraries ever enters conc's own go.mod; run it with `make bench-peers`.
package peers
