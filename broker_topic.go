package conc

import (
	"maps"
	"strings"
)

// Topics are dot-separated tokens, spelled as NATS spells its subjects:
// "orders.eu.created". A subscription pattern may use two wildcards, each
// standing for whole tokens only:
//
//	*   exactly one token:        "orders.*.created" matches "orders.eu.created"
//	>   one or more final tokens: "orders.>" matches "orders.eu" and "orders.eu.created",
//	                              but not "orders" itself
//
// Published topics must be literal. The rules are checked by parseTopic, once
// per subscription and, for publishing, only when the topic has no exact
// subscriber (a topic that is a key of the exact map was checked when that
// subscriber came in, so the common case pays nothing for validation).

// parseTopic checks topic against the grammar above and reports whether it
// contains a wildcard. pattern says whether wildcards are allowed at all
// (subscriptions) or not (publishing). problem is empty when the topic is
// well formed and otherwise says what is wrong with it, for the panic or
// error message. It does not allocate: tokens are found with IndexByte and
// sliced, never split into a []string.
func parseTopic(topic string, pattern bool) (wild bool, problem string) {
	if topic == "" {
		return false, "empty topic"
	}
	for rest := topic; ; {
		i := strings.IndexByte(rest, '.')
		tok := rest
		if i >= 0 {
			tok = rest[:i]
		}
		// NATS rules: wildcards are whole tokens, ">" only at the end,
		// and no token is empty. A wildcard inside a token ("a*") is
		// refused rather than taken literally, so that a typo in a
		// pattern cannot silently subscribe to nothing.
		switch {
		case tok == "":
			return false, "empty token"
		case tok == "*" || tok == ">":
			if !pattern {
				return false, "wildcard in a published topic"
			}
			if tok == ">" && i >= 0 {
				return false, `">" must be the last token`
			}
			wild = true
		case strings.ContainsAny(tok, "*>"):
			return false, `"*" and ">" must be whole tokens`
		case hasSpaceOrControl(tok):
			return false, "whitespace or control character"
		}
		if i < 0 {
			return wild, ""
		}
		rest = rest[i+1:]
	}
}

// hasSpaceOrControl reports whether tok holds an ASCII space, tab, line
// break or other control character. NATS separates the fields of its
// protocol lines with spaces and tabs and ends them with CR LF, so such a
// topic could not cross a process boundary as one subject; refusing it
// here keeps the in-process Broker and a NATS-backed one in agreement.
func hasSpaceOrControl(tok string) bool {
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c <= ' ' || c == 0x7f {
			return true
		}
	}
	return false
}

// cutToken splits the first token off a well-formed topic. last reports that
// tok was the final token (more is then empty). Slicing, rather than
// strings.Split, keeps the publish path free of allocations: every token
// is a substring of the topic, and a substring can be a map key for a
// lookup without being copied.
func cutToken(topic string) (tok, more string, last bool) {
	i := strings.IndexByte(topic, '.')
	if i < 0 {
		return topic, "", true
	}
	return topic[:i], topic[i+1:], false
}

// A topicNode is one level of the wildcard trie. The trie holds only patterns
// that contain a wildcard; literal patterns live in the snapshot's exact map,
// which answers the common case with one map lookup. A node is immutable once
// it is reachable from a published snapshot: Subscribe and Unsubscribe copy
// the nodes on the pattern's path (path copying) and share the rest, so a
// publisher walking an old snapshot never sees a half-made change and never
// needs a lock.
type topicNode[E any] struct {
	next map[string]*topicNode[E] // children by literal token
	star *topicNode[E]            // child for the "*" token
	subs []groupRef[E]            // patterns that end at this node
	rest []groupRef[E]            // patterns "<path to this node>.>"
}

// clone returns a shallow copy of n (a fresh node when n is nil). Slices and
// the map stay shared with n; callers replace, never modify, them. A change
// thus copies one node per token of the pattern plus the child maps on
// that path, which keeps Subscribe cheap however many wildcard
// subscriptions exist elsewhere in the trie.
func (n *topicNode[E]) clone() *topicNode[E] {
	c := &topicNode[E]{}
	if n != nil {
		*c = *n
	}
	return c
}

// child returns n's child for tok, the literal token or "*"; nil when
// there is none or n itself is nil, so that with can extend a missing path.
func (n *topicNode[E]) child(tok string) *topicNode[E] {
	if n == nil {
		return nil
	}
	if tok == "*" {
		return n.star
	}
	return n.next[tok]
}

// setChild replaces the child for tok in n, which must be a private copy.
// The map is cloned, not written, because the original may be shared with
// the snapshot that publishers are reading. A nil child removes the entry.
func (n *topicNode[E]) setChild(tok string, c *topicNode[E]) {
	if tok == "*" {
		n.star = c
		return
	}
	m := maps.Clone(n.next)
	if c == nil {
		delete(m, tok)
		if len(m) == 0 {
			m = nil
		}
	} else {
		if m == nil {
			m = make(map[string]*topicNode[E], 1)
		}
		m[tok] = c
	}
	n.next = m
}

// empty reports whether n holds no subscription and leads to none; such a
// node is dropped by without.
func (n *topicNode[E]) empty() bool {
	return len(n.next) == 0 && n.star == nil && len(n.subs) == 0 && len(n.rest) == 0
}

// with returns a copy of n with s added under pattern, the tokens still to
// place below n. Only the nodes on the path are copied.
func (n *topicNode[E]) with(pattern string, s *Subscription[E]) *topicNode[E] {
	c := n.clone()
	tok, more, last := cutToken(pattern)
	if tok == ">" {
		// withSub copies: the old slice may be in use.
		c.rest = withSub(c.rest, s)
		return c
	}
	var nc *topicNode[E]
	if last {
		nc = n.child(tok).clone()
		nc.subs = withSub(nc.subs, s)
	} else {
		nc = n.child(tok).with(more, s)
	}
	c.setChild(tok, nc)
	return c
}

// without returns a copy of n with s removed from under pattern, or nil
// when the copy would be empty, so that the trie does not keep growing with
// patterns nobody subscribes to any more. found is false, and n is returned
// as is, when s is not there (a second Unsubscribe).
func (n *topicNode[E]) without(pattern string, s *Subscription[E]) (_ *topicNode[E], found bool) {
	if n == nil {
		return nil, false
	}
	tok, more, last := cutToken(pattern)
	c := n.clone()
	switch {
	case tok == ">":
		if c.rest, found = withoutSub(n.rest, s); !found {
			return n, false
		}
	case last:
		old := n.child(tok)
		if old == nil {
			return n, false
		}
		nc := old.clone()
		if nc.subs, found = withoutSub(old.subs, s); !found {
			return n, false
		}
		if nc.empty() {
			nc = nil
		}
		c.setChild(tok, nc)
	default:
		nc, found := n.child(tok).without(more, s)
		if !found {
			return n, false
		}
		c.setChild(tok, nc)
	}
	if c.empty() {
		return nil, true
	}
	return c, true
}

// match hands p every group whose pattern below n matches topic, the
// tokens not consumed yet (never empty). The walk follows at most two
// children per level (the literal token and "*") plus the ">" list, so its
// cost depends on the topic's depth and on the patterns that actually
// match, not on how many subscriptions exist.
func (n *topicNode[E]) match(topic string, p *publication[E]) {
	// ">" here matches because at least one token is left.
	p.deliverAll(n.rest)
	tok, more, last := cutToken(topic)
	if c := n.next[tok]; c != nil {
		if last {
			p.deliverAll(c.subs)
		} else {
			c.match(more, p)
		}
	}
	if c := n.star; c != nil {
		if last {
			p.deliverAll(c.subs)
		} else {
			c.match(more, p)
		}
	}
}
