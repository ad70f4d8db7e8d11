package httplimit

import (
	"net/http/httptest"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
)

// A key is kept by the limiter for as long as the key is remembered: a
// short key cut out of a huge header value must not keep the whole value
// alive. Before, Header returned a substring of the value, so a client
// sending "k" followed by 500 KB of U+00A0 (which TrimSpace removes and
// the HTTP server does not) pinned 500 KB per key in the limiter.
func TestHeaderKeyDoesNotPinTheHeaderValue(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	value := "k" + strings.Repeat("\u00a0", 250_000)
	r.Header.Set("X-Api-Key", value)
	key := Header("X-Api-Key")(r)
	assert.Equal(t, "k", key)
	start := uintptr(unsafe.Pointer(unsafe.StringData(value)))
	p := uintptr(unsafe.Pointer(unsafe.StringData(key)))
	assert.False(t, p >= start && p < start+uintptr(len(value)), "the key points into the header value")
}
