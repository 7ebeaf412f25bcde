package alerts

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
)

// fullState is a state with every field set: held events and sent changes
// with and without their optional fields.
func fullState(t testing.TB) *state {
	t.Helper()
	const site = "https://shop.example/"
	r := rules{failures: 3, successes: 2, certWarning: 14 * 24 * time.Hour}
	st := &state{URL: site}
	for _, ev := range pattern(site, "uudddd") {
		r.apply(st, ev, Rule{Name: "Shop"})
	}
	soon := t0.Add(time.Hour)
	withCert := check(site, 7, true)
	withCert.TLSNotAfter = &soon
	r.apply(st, withCert, Rule{})
	if st.sent.n != 2 || st.Cert != certExpiring {
		t.Fatalf("setup: %d sent, cert %q", st.sent.n, st.Cert)
	}
	st.hold(&pending{Result: check(site, 9, false), Topic: "status_request_failed", Offset: 41, HeldAt: t0.Add(time.Second)})
	st.hold(&pending{Result: check(site, 8, true), Topic: "status_request_succeeded", Offset: -1, HeldAt: t0.Add(2 * time.Second)})
	return st
}

func TestStateCodecRoundTrip(t *testing.T) {
	st := fullState(t)
	got, data := readBack(t, st)
	if !sameState(got, st) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, st)
	}
	again, _ := stateCodec{}.Encode(got)
	if !bytes.Equal(again, data) {
		t.Error("encoding the decoded state gives other bytes")
	}
	// The held events come back in checked_at order, with what applying
	// them needs.
	e := got.oldestHeld()
	if e.Result.EventID != st.URL+"#8" || e.Offset != -1 || e.Topic != "status_request_succeeded" ||
		e.Result.URL != st.URL || !e.Result.Up() || !e.HeldAt.Equal(t0.Add(2*time.Second)) {
		t.Errorf("oldest held: %+v %+v", e, e.Result)
	}
	got.held.dropFirst()
	e = got.oldestHeld()
	if e.Result.EventID != st.URL+"#9" || e.Offset != 41 || e.Result.ErrorKind == nil || *e.Result.ErrorKind != codecs.ErrStatus ||
		e.Result.StatusCode != 503 || e.Result.ErrorMessage == nil {
		t.Errorf("second held: %+v %+v", e, e.Result)
	}
	// The sent changes come back whole: a re-delivered crossing event
	// sends the change it made again, field for field.
	downs := got.sentBy(st.URL + "#4")
	if len(downs) != 1 {
		t.Fatalf("sent by the crossing event: %d changes", len(downs))
	}
	want := newChange(check(st.URL, 4, false), "Shop", codecs.ChangeDown, codecs.StateDown, codecs.StateUp, t0.Add(2*time.Minute), 3)
	if !reflect.DeepEqual(downs[0], want) {
		t.Errorf("sent change:\n got %+v\nwant %+v", downs[0], want)
	}

	// Every truncation and a trailing byte are errors, never a panic or
	// a state that fails later.
	for n := range data {
		if _, err := (stateCodec{}).Decode(data[:n]); err == nil {
			t.Errorf("truncated to %d of %d bytes: decoded", n, len(data))
		}
	}
	if _, err := (stateCodec{}).Decode(append(append([]byte(nil), data...), 0)); err == nil {
		t.Error("trailing byte accepted")
	}
	if _, err := (stateCodec{}).Decode([]byte{7}); err == nil {
		t.Error("version 7 accepted")
	}
}

// TestStateFromVersion1 decodes a value written by the JSON codec: a
// running table upgrades as its values are rewritten.
func TestStateFromVersion1(t *testing.T) {
	const v1 = `{"v":1,"state":"down","run_up":false,"run_count":4,"run_since":"2026-11-30T09:02:00Z",` +
		`"newest":"2026-11-30T09:05:00Z","recent":["https://shop.example/#4","https://shop.example/#5"],` +
		`"cert":"ok","cert_not_after":"2027-01-01T00:00:00Z",` +
		`"sent":[{"v":1,"change_id":"abc","url":"https://shop.example/","name":"Shop","kind":"down","state":"down",` +
		`"previous_state":"up","since":"2026-11-30T09:02:00Z","changed_at":"2026-11-30T09:04:00Z","consecutive":3,` +
		`"event_id":"https://shop.example/#4","error_kind":"status","error_message":"status 503","status_code":503,"tls_not_after":null}],` +
		`"pending":[{"result":{"v":1,"event_id":"https://shop.example/#6","url":"https://shop.example/",` +
		`"scheduled_at":"2026-11-30T09:06:00Z","checked_at":"2026-11-30T09:06:00Z","outcome":"up","status_code":200,` +
		`"checker":"test"},"topic":"status_request_succeeded","held_at":"2026-11-30T09:06:01Z"}]}`
	v, err := stateCodec{}.Decode([]byte(v1))
	if err != nil {
		t.Fatal(err)
	}
	st := v.(*state)
	if st.URL != "https://shop.example/" || st.State != codecs.StateDown || st.RunCount != 4 || len(st.Recent) != 2 ||
		st.Cert != certOK || !st.Newest.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("state: %+v", st)
	}
	if cs := st.sentBy("https://shop.example/#4"); len(cs) != 1 || cs[0].ChangeID != "abc" || cs[0].ErrorMessage == nil {
		t.Errorf("sent: %+v", cs)
	}
	if e := st.oldestHeld(); st.holding() != 1 || e.Offset != -1 || e.Result.EventID != "https://shop.example/#6" || !e.Result.Up() {
		t.Errorf("held: %+v", e)
	}
	// Written again, it is version 2 and reads back the same.
	data, err := stateCodec{}.Encode(st)
	if err != nil || data[0] != stateVersion {
		t.Fatalf("re-encoded: %v, version %d", err, data[0])
	}
	back, err := stateCodec{}.Decode(data)
	if err != nil || !sameState(back, st) {
		t.Errorf("version 1 upgraded, then read back: %v\n got %+v\nwant %+v", err, back, st)
	}
	if _, err := (stateCodec{}).Decode([]byte(`{"v":7}`)); err == nil {
		t.Error("JSON version 7 accepted")
	}
}

// TestHoldKeepsCheckedAtOrder: an older event held after newer ones goes
// before them; a re-delivered held event is held once.
func TestHoldKeepsCheckedAtOrder(t *testing.T) {
	const site = "https://shop.example/"
	st := &state{URL: site}
	for _, i := range []int{3, 1, 4, 1, 2, 4} {
		st.hold(&pending{Result: check(site, i, true), Topic: "t", Offset: int64(i)})
	}
	var got []int64
	for st.holding() > 0 {
		got = append(got, st.oldestHeld().Offset)
		st.held.dropFirst()
	}
	if want := []int64{1, 2, 3, 4}; !reflect.DeepEqual(got, want) {
		t.Errorf("held order %v, want %v", got, want)
	}
}

// FuzzStateCodec: any bytes decode to an error or to a state that
// encodes, decodes to itself, and whose held events and sent changes can
// all be read.
func FuzzStateCodec(f *testing.F) {
	data, err := stateCodec{}.Encode(fullState(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	empty, _ := stateCodec{}.Encode(&state{})
	f.Add(empty)
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := stateCodec{}.Decode(data)
		if err != nil {
			return
		}
		st := v.(*state)
		enc, err := stateCodec{}.Encode(st)
		if err != nil {
			t.Fatal(err)
		}
		back, err := stateCodec{}.Decode(enc)
		if err != nil {
			t.Fatalf("re-encoded state rejected: %v", err)
		}
		if !sameState(back, st) {
			t.Fatalf("round trip differs:\n%+v\n%+v", back, st)
		}
		st.sent.each(func(item []byte) bool {
			if _, err := decodeChange(item, st.URL); err != nil {
				t.Fatalf("sent change accepted at decode, rejected later: %v", err)
			}
			return true
		})
		for st.holding() > 0 {
			st.oldestHeld()
			st.held.dropFirst()
		}
	})
}
