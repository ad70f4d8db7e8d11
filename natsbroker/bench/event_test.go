package bench

import (
	"encoding/json"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The hand-written codec agrees with encoding/json, and the events are
// 128 bytes.
func TestHandWrittenJSON(t *testing.T) {
	e := NewEvent(firstID)
	data := AppendJSON(nil, e)
	if len(data) != 128 {
		t.Fatalf("event is %d bytes", len(data))
	}
	var viaStd Event
	if err := json.Unmarshal(data, &viaStd); err != nil || viaStd != e {
		t.Fatalf("encoding/json reads %+v, %v", viaStd, err)
	}
	std, _ := json.Marshal(e)
	var back Event
	if err := ParseJSON(std, &back); err != nil || back != e {
		t.Fatalf("ParseJSON reads %+v, %v", back, err)
	}
	if ParseJSON([]byte(`{"id":1}`), &back) == nil {
		t.Fatal("a truncated event parsed")
	}
}
