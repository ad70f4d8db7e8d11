package redislimit

import (
	"crypto/sha1"
	"encoding/hex"
	"strings"
)

// gcraScript decides one event of n tokens for one key, GCRA as in
// conc.Limiter, with the server's clock so that replicas with skewed clocks
// agree. The key holds the theoretical arrival time (TAT) in microseconds of
// the server's clock; it is written only when the event is admitted, with an
// expiry at the moment the bucket would be full again, so an idle key costs
// nothing. Scripts replicate their effects (the default since Redis 5, the
// only mode since 7), which is what makes TIME usable before a write.
//
// ARGV: the emission interval in µs (may be fractional), the burst, n.
// Reply: {allowed, remaining, retry-after µs, reset-after µs}. Remaining and
// the times are whole numbers: remaining rounds down, times round up, so a
// client that trusts them never comes back too early.
//
// Doubles hold µs since the epoch exactly (below 2^53 until the year 2255).
// The stored word is formatted with %.0f because Lua's tostring keeps only 14
// digits.
const gcraScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local iv = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local tau = iv * burst
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then tat = now end
local new = tat + n * iv
if new - now <= tau then
  local ahead = new - now
  if ahead > 0 then
    redis.call('SET', KEYS[1], string.format('%.0f', math.ceil(new)), 'PX', math.ceil(ahead / 1000))
  end
  return {1, math.floor((tau - ahead) / iv), 0, math.ceil(ahead)}
end
local ahead = tat - now
return {0, math.floor((tau - ahead) / iv), math.ceil(new - tau - now), math.ceil(ahead)}
`

// gcraSHA is the script's digest, for EVALSHA.
var gcraSHA = func() string {
	h := sha1.Sum([]byte(gcraScript))
	return hex.EncodeToString(h[:])
}()

// isNoScript reports whether err is Redis saying it does not know the
// script (after SCRIPT FLUSH, a restart or a failover to a replica that
// never saw it).
func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}
