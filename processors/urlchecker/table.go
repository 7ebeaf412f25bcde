package urlchecker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lovoo/goka"
)

// slotState is the group table's value for one URL: the newest slot a
// request was accepted for, and the input offset of that request. The
// offset tells a redelivery of the same message (after a crash before its
// offset was committed: check it again) from a second request for the
// slot sent by another emitter instance (drop it).
type slotState struct {
	V           int       `json:"v"`
	ScheduledAt time.Time `json:"scheduled_at"`
	Partition   int32     `json:"partition"`
	Offset      int64     `json:"offset"`
}

// slotCodec is the group table's codec: strict JSON, version 1.
type slotCodec struct{}

var _ goka.Codec = slotCodec{}

func (slotCodec) Encode(v any) ([]byte, error) {
	s, ok := v.(*slotState)
	if !ok {
		return nil, fmt.Errorf("encode slot state: got %T", v)
	}
	s.V = 1
	return json.Marshal(s)
}

func (slotCodec) Decode(data []byte) (any, error) {
	var s slotState
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decode slot state: %w", err)
	}
	if s.V != 1 {
		return nil, fmt.Errorf("decode slot state: unsupported version %d", s.V)
	}
	return &s, nil
}
