package benchkit

// Share is the part of n items that worker i of g takes when they are
// split as evenly as possible: the first n%g workers take one more.
func Share(n, g, i int) int {
	s := n / g
	if i < n%g {
		s++
	}
	return s
}
