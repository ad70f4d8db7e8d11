package httplimit

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// A KeyFunc names the bucket of a request; "" means the request has no key.
// It runs on untrusted input, so the middleware does not trust its answer
// either:
//
//   - every request without a key shares one bucket (named "\x00missing"),
//     so leaving the key out never bypasses the limit;
//   - a key longer than MaxKeyLen bytes (a huge header) is not stored: every
//     such request shares one bucket ("\x00oversize"), so a flood of long
//     keys costs the limiter one key and is limited as one client.
//
// Neither shared name can be produced by a header value or an address.
// A limiter may remember a key for long: a KeyFunc that cuts the key out
// of a larger string (a header, a path) should return a copy
// (strings.Clone), or the whole string stays in memory with it.
type KeyFunc func(r *http.Request) string

// MaxKeyLen is the longest key the middleware passes to the limiter.
const MaxKeyLen = 256

const (
	missingKey  = "\x00missing"
	oversizeKey = "\x00oversize"
)

const (
	keyOK = iota
	keyMissing
	keyOversize
)

func (m *Middleware) keyOf(r *http.Request) (string, int) {
	k := m.key(r)
	switch {
	case k == "":
		return missingKey, keyMissing
	case len(k) > MaxKeyLen:
		return oversizeKey, keyOversize
	}
	return k, keyOK
}

// RemoteIP keys a request by the address of the peer that opened the
// connection (r.RemoteAddr), the only address a client cannot forge; it
// trusts no header. Behind a proxy every request then has the proxy's
// address: use ForwardedFor. An IPv6 address is keyed by its /64 prefix,
// since one client commonly holds a whole /64 and could otherwise take a
// fresh bucket per request; an IPv4-mapped IPv6 address counts as IPv4.
func RemoteIP(r *http.Request) string {
	a, ok := parseHost(r.RemoteAddr)
	if !ok {
		return ""
	}
	return clientKey(a)
}

func parseHost(hostport string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return ap.Addr().Unmap(), true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func clientKey(a netip.Addr) string {
	a = a.WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// maxHops bounds how many X-Forwarded-For entries ForwardedFor reads, from
// the right: a request cannot make it parse a long forged list.
const maxHops = 32

// ForwardedFor keys a request by the client address that the trusted proxies
// recorded in X-Forwarded-For. Only when the connection comes from a trusted
// proxy is the header read at all; it is then read from the right (the
// entries a trusted proxy appended), skipping trusted addresses, and the
// first untrusted address is the client: entries to its left were written
// by the client and may be forged. A request from an untrusted peer, or
// whose header holds nothing usable where the client's entry should be, is
// keyed by its peer address as RemoteIP does. Prefixes are, for example,
// netip.MustParsePrefix("10.0.0.0/8").
func ForwardedFor(trusted ...netip.Prefix) KeyFunc {
	prefixes := append([]netip.Prefix(nil), trusted...)
	isTrusted := func(a netip.Addr) bool {
		for _, p := range prefixes {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return func(r *http.Request) string {
		peer, ok := parseHost(r.RemoteAddr)
		if !ok {
			return ""
		}
		if !isTrusted(peer) {
			return clientKey(peer)
		}
		last := peer // the nearest trusted hop so far
		hops := 0
		values := r.Header.Values("X-Forwarded-For")
		for i := len(values) - 1; i >= 0; i-- {
			v := values[i]
			for v != "" {
				if hops++; hops > maxHops {
					return clientKey(last)
				}
				var hop string
				if j := strings.LastIndexByte(v, ','); j >= 0 {
					hop, v = v[j+1:], v[:j]
				} else {
					hop, v = v, ""
				}
				a, ok := parseHost(strings.TrimSpace(hop))
				if !ok {
					// Garbage where a trusted proxy should have
					// written an address: stop at the last hop known.
					return clientKey(last)
				}
				if !isTrusted(a) {
					return clientKey(a)
				}
				last = a
			}
		}
		return clientKey(last)
	}
}

// Header keys a request by the value of the named header (an API key, a
// tenant id), trimmed of spaces. A request without it has no key; a value
// longer than MaxKeyLen is not used as a key (see KeyFunc). The header is
// whatever the client sent: use it for credentials that a later handler
// checks, not as proof of identity.
func Header(name string) KeyFunc {
	name = http.CanonicalHeaderKey(name)
	return func(r *http.Request) string {
		v := r.Header.Get(name)
		k := strings.TrimSpace(v)
		if len(k) < len(v) && len(k) <= MaxKeyLen {
			// The limiter keeps the key: a copy, so that a short key
			// trimmed out of a huge value does not keep the value alive.
			k = strings.Clone(k)
		}
		return k
	}
}
