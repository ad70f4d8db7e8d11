// Package bench measures natsbroker against the ways Go programs use NATS
// today: watermill-nats v2 and plain nats.go with hand-written JSON (the
// floor). It is a module of its own so that watermill stays out of
// natsbroker's dependencies. Run it with `make bench-nats`.
package bench

import (
	"errors"
	"strconv"
)

// Event is the benchmark's event: 128 bytes once encoded as JSON.
type Event struct {
	ID      uint64 `json:"id"`
	Kind    string `json:"kind"`
	Payload string `json:"payload"`
}

// NewEvent returns event id, with a payload that makes its encoding 128
// bytes long for ids of up to six digits.
func NewEvent(id uint64) Event {
	e := Event{ID: id, Kind: "order.created"}
	n := len(AppendJSON(nil, e))
	pad := make([]byte, 128-n)
	for i := range pad {
		pad[i] = 'a' + byte(i%26)
	}
	e.Payload = string(pad)
	return e
}

// AppendJSON appends the JSON encoding of e to buf, written by hand as a
// careful plain nats.go program would: no reflection, no allocation. Kind
// and Payload are known to need no escaping.
func AppendJSON(buf []byte, e Event) []byte {
	buf = append(buf, `{"id":`...)
	buf = strconv.AppendUint(buf, e.ID, 10)
	buf = append(buf, `,"kind":"`...)
	buf = append(buf, e.Kind...)
	buf = append(buf, `","payload":"`...)
	buf = append(buf, e.Payload...)
	return append(buf, `"}`...)
}

var errBadEvent = errors.New("bench: malformed event")

// ParseJSON decodes what AppendJSON wrote. It keeps Kind and Payload as
// strings of their own (one allocation each), as any decoder must once
// the message buffer is reused.
func ParseJSON(data []byte, e *Event) error {
	const idKey, kindKey, payloadKey = `{"id":`, `,"kind":"`, `","payload":"`
	s := string(data) // one copy: both strings share it
	if len(s) < len(idKey) || s[:len(idKey)] != idKey {
		return errBadEvent
	}
	s = s[len(idKey):]
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	id, err := strconv.ParseUint(s[:i], 10, 64)
	if err != nil {
		return errBadEvent
	}
	s = s[i:]
	if len(s) < len(kindKey) || s[:len(kindKey)] != kindKey {
		return errBadEvent
	}
	s = s[len(kindKey):]
	j := indexQuote(s)
	if j < 0 {
		return errBadEvent
	}
	kind := s[:j]
	s = s[j:]
	if len(s) < len(payloadKey) || s[:len(payloadKey)] != payloadKey {
		return errBadEvent
	}
	s = s[len(payloadKey):]
	k := indexQuote(s)
	if k < 0 || s[k:] != `"}` {
		return errBadEvent
	}
	*e = Event{ID: id, Kind: kind, Payload: s[:k]}
	return nil
}

func indexQuote(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			return i
		}
	}
	return -1
}

// Codec is the hand-written JSON as a natsbroker.Codec.
type Codec struct{}

// Marshal appends e's JSON to buf.
func (Codec) Marshal(buf []byte, e Event) ([]byte, error) { return AppendJSON(buf, e), nil }

// Unmarshal decodes data into e.
func (Codec) Unmarshal(data []byte, e *Event) error { return ParseJSON(data, e) }
