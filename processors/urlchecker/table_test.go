package urlchecker

import (
	"strings"
	"testing"
	"time"
)

// TestSlotCodec: the binary record round-trips, the JSON values earlier
// builds left in the table topic are still read (an upgrade keeps its
// table), and anything else is refused with a reason.
func TestSlotCodec(t *testing.T) {
	at := time.Date(2026, 11, 29, 12, 5, 0, 123456789, time.UTC)
	in := &slotState{ScheduledAt: at, Partition: 7, Offset: 1<<40 + 3}
	b, err := slotCodec{}.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != slotBinaryLen {
		t.Fatalf("encoded %d bytes, want %d", len(b), slotBinaryLen)
	}
	v, err := slotCodec{}.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	got := v.(*slotState)
	if !got.ScheduledAt.Equal(at) || got.Partition != 7 || got.Offset != in.Offset {
		t.Fatalf("round trip: got %+v, want %+v", got, in)
	}

	v, err = slotCodec{}.Decode([]byte(`{"v":1,"scheduled_at":"2026-11-29T12:05:00.123456789Z","partition":3,"offset":42}`))
	if err != nil {
		t.Fatalf("JSON value of an earlier build: %v", err)
	}
	if got := v.(*slotState); !got.ScheduledAt.Equal(at) || got.Partition != 3 || got.Offset != 42 {
		t.Fatalf("JSON value decoded as %+v", got)
	}

	bad := append([]byte(nil), b...)
	bad[9], bad[10], bad[11], bad[12] = 0xff, 0xff, 0xff, 0xff
	for name, data := range map[string][]byte{
		"short":        b[:10],
		"version":      append([]byte{9}, b[1:]...),
		"nanoseconds":  bad,
		"json version": []byte(`{"v":2,"scheduled_at":"2026-11-29T12:05:00Z","partition":3,"offset":42}`),
		"json unknown": []byte(`{"v":1,"x":1}`),
		"empty":        nil,
	} {
		if _, err := (slotCodec{}).Decode(data); err == nil || !strings.Contains(err.Error(), "slot state") {
			t.Errorf("%s: err = %v, want a slot state error", name, err)
		}
	}
}
