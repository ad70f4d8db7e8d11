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

// gcraManyScript is gcraScript for several keys at once, for a batch on a
// single Redis node (never on a cluster, where the keys of one script must
// share a slot): KEYS are the keys, ARGV the interval, the burst and one n
// per key; the reply is the four numbers of each key in order. One clock
// reading serves the whole batch. A key may appear twice: each step reads
// what the one before wrote.
const gcraManyScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local iv = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tau = iv * burst
local out = {}
for i, key in ipairs(KEYS) do
  local n = tonumber(ARGV[i + 2])
  local tat = tonumber(redis.call('GET', key))
  if not tat or tat < now then tat = now end
  local new = tat + n * iv
  local j = #out
  if new - now <= tau then
    local ahead = new - now
    if ahead > 0 then
      redis.call('SET', key, string.format('%.0f', math.ceil(new)), 'PX', math.ceil(ahead / 1000))
    end
    out[j + 1], out[j + 2], out[j + 3], out[j + 4] = 1, math.floor((tau - ahead) / iv), 0, math.ceil(ahead)
  else
    local ahead = tat - now
    out[j + 1], out[j + 2], out[j + 3], out[j + 4] = 0, math.floor((tau - ahead) / iv), math.ceil(new - tau - now), math.ceil(ahead)
  end
end
return out
`

// gcraSHA and gcraManySHA are the scripts' digests, for EVALSHA.
var gcraSHA, gcraManySHA = digest(gcraScript), digest(gcraManyScript)

func digest(src string) string {
	h := sha1.Sum([]byte(src))
	return hex.EncodeToString(h[:])
}

// isNoScript reports whether err is Redis saying it does not know the
// script (after SCRIPT FLUSH, a restart or a failover to a replica that
// never saw it).
func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}
