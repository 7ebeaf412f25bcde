package codecs

import (
	"strings"
	"testing"
	"time"
)

func TestStatusChangeRoundTripAndStrictness(t *testing.T) {
	kind := ErrStatus
	msg := "status 500"
	c := &StatusChange{
		ChangeID: "https://a/|down|2026-12-01T10:00:00Z", URL: "https://a/", Name: "A",
		Kind: ChangeDown, State: StateDown, PreviousState: StateUp,
		Since: time.Date(2026, 12, 1, 9, 58, 0, 0, time.UTC), ChangedAt: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
		Consecutive: 3, EventID: "e3", ErrorKind: &kind, ErrorMessage: &msg, StatusCode: 500,
	}
	data, err := StatusChangeCodec{}.Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"v":1`) {
		t.Fatalf("encoded change has no version: %s", data)
	}
	got, err := DecodeStatusChange(data)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if got.ChangeID != c.ChangeID || got.Kind != ChangeDown || got.Consecutive != 3 || *got.ErrorMessage != msg {
		t.Fatalf("round trip changed the event: %+v", got)
	}

	for name, tc := range map[string]struct{ in, want string }{
		"unknown field": {strings.Replace(string(data), `"v":1`, `"v":1,"extra":2`, 1), "unknown field"},
		"bad kind":      {strings.Replace(string(data), `"kind":"down"`, `"kind":"sideways"`, 1), `field "kind"`},
		"bad state":     {strings.Replace(string(data), `"state":"down"`, `"state":"unknown"`, 1), `field "state"`},
		"no change_id":  {strings.Replace(string(data), `"change_id":"https://a/|down|2026-12-01T10:00:00Z"`, `"change_id":""`, 1), `"change_id"`},
		"version 2":     {strings.Replace(string(data), `"v":1`, `"v":2`, 1), "unsupported version"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeStatusChange([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("decode(%s) = %v, want an error containing %q", tc.in, err, tc.want)
			}
		})
	}
}
