package urlchecker

import (
	"bytes"
	"encoding/binary"
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

// slotCodec is the group table's codec. The table is internal to the
// url_checker group (no other part reads its topic) and is written once
// per accepted check, so its values are a fixed 25-byte binary record
// rather than JSON: a version byte (2), the slot as Unix seconds and
// nanoseconds, the partition and the offset, big-endian. Values written
// by earlier builds as strict JSON version 1 (they start with '{') are
// still read, so an upgraded emitter recovers the table it left.
type slotCodec struct{}

var _ goka.Codec = slotCodec{}

const (
	slotBinaryVersion = 2
	slotBinaryLen     = 1 + 8 + 4 + 4 + 8
)

func (slotCodec) Encode(v any) ([]byte, error) {
	s, ok := v.(*slotState)
	if !ok {
		return nil, fmt.Errorf("encode slot state: got %T", v)
	}
	b := make([]byte, slotBinaryLen)
	b[0] = slotBinaryVersion
	binary.BigEndian.PutUint64(b[1:], uint64(s.ScheduledAt.Unix()))
	binary.BigEndian.PutUint32(b[9:], uint32(s.ScheduledAt.Nanosecond()))
	binary.BigEndian.PutUint32(b[13:], uint32(s.Partition))
	binary.BigEndian.PutUint64(b[17:], uint64(s.Offset))
	return b, nil
}

func (slotCodec) Decode(data []byte) (any, error) {
	if len(data) > 0 && data[0] == '{' {
		return decodeSlotJSON(data)
	}
	if len(data) != slotBinaryLen || data[0] != slotBinaryVersion {
		return nil, fmt.Errorf("decode slot state: not a version %d record of %d bytes (got %d bytes)", slotBinaryVersion, slotBinaryLen, len(data))
	}
	ns := binary.BigEndian.Uint32(data[9:])
	if ns >= 1e9 {
		return nil, fmt.Errorf("decode slot state: nanoseconds %d out of range", ns)
	}
	return &slotState{
		V:           slotBinaryVersion,
		ScheduledAt: time.Unix(int64(binary.BigEndian.Uint64(data[1:])), int64(ns)).UTC(),
		Partition:   int32(binary.BigEndian.Uint32(data[13:])),
		Offset:      int64(binary.BigEndian.Uint64(data[17:])),
	}, nil
}

// decodeSlotJSON reads the JSON version 1 values of earlier builds.
func decodeSlotJSON(data []byte) (*slotState, error) {
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
