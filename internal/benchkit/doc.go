// Package benchkit holds the benchmark harnesses that conc's own comparison
// suites and the peer suites of bench/peers share, so that a conc row in
// either table and the rows it is compared with are measured by the same
// code. It imports nothing of conc (conc's in-package benchmarks import it,
// which would be a cycle); what is measured is passed in as functions or
// small interfaces.
package benchkit
