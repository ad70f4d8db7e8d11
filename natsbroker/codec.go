package natsbroker

import "encoding/json"

// A Codec turns events into NATS payloads and back. Marshal appends the
// encoding of e to buf and returns the extended slice (the broker passes a
// reused buffer, so a codec that appends in place allocates nothing);
// Unmarshal decodes data into e. The broker calls Marshal from any
// publishing goroutine and Unmarshal from the delivery goroutine of each
// subscription, so both must be safe for concurrent use. Unmarshal must
// not keep data after it returns.
type Codec[E any] interface {
	Marshal(buf []byte, e E) ([]byte, error)
	Unmarshal(data []byte, e *E) error
}

// JSON is the default Codec: encoding/json, so that any process, in any
// language, can read and write the events.
type JSON[E any] struct{}

// Marshal appends the JSON encoding of e to buf.
func (JSON[E]) Marshal(buf []byte, e E) ([]byte, error) {
	data, err := json.Marshal(e)
	if err != nil {
		return buf, err
	}
	return append(buf, data...), nil
}

// Unmarshal decodes the JSON in data into e.
func (JSON[E]) Unmarshal(data []byte, e *E) error {
	return json.Unmarshal(data, e)
}
