package codecs_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
)

func ptr[T any](v T) *T { return &v }

func sampleResult() *codecs.Result {
	t := time.Date(2026, 11, 29, 12, 5, 0, 123456789, time.UTC)
	return &codecs.Result{
		EventID: "e1", URL: "https://example.com/", ScheduledAt: t, CheckedAt: t.Add(time.Millisecond),
		Outcome: codecs.OutcomeDown, StatusCode: 200, ResponseTimeMS: ptr(12.5), DNSMS: ptr(1.25),
		ConnectMS: ptr(2.0), TTFBMS: ptr(8.0), TransferMS: ptr(0.5), BodyBytes: 1256,
		Regexp: ptr("Example"), RegexpMatched: ptr(false), ErrorKind: ptr(codecs.ErrRegexp),
		ErrorMessage: ptr("regexp \"Example\" did not match"), TLSNotAfter: ptr(time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)),
		Checker: "host-1",
	}
}

func TestResultRoundTrip(t *testing.T) {
	in := sampleResult()
	data, err := codecs.ResultCodec{}.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	// The contract's field names, snake_case like the table columns.
	for _, k := range []string{"v", "event_id", "url", "scheduled_at", "checked_at", "outcome", "status_code",
		"response_time_ms", "dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "transfer_ms", "body_bytes",
		"regexp", "regexp_matched", "error_kind", "error_message", "tls_not_after", "checker", "region"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("encoded result lacks %q: %s", k, data)
		}
	}
	if raw["v"] != float64(1) || raw["tls_ms"] != nil {
		t.Errorf("v=%v tls_ms=%v, want 1 and null", raw["v"], raw["tls_ms"])
	}
	if !strings.Contains(string(data), `"checked_at":"2026-11-29T12:05:00.124456789Z"`) {
		t.Errorf("checked_at not RFC 3339 UTC with ns: %s", data)
	}
	out, err := codecs.DecodeResult(data)
	if err != nil {
		t.Fatal(err)
	}
	if !out.CheckedAt.Equal(in.CheckedAt) || *out.ErrorKind != codecs.ErrRegexp || *out.ResponseTimeMS != 12.5 || out.TLSMS != nil ||
		out.TLSNotAfter == nil || !out.TLSNotAfter.Equal(*in.TLSNotAfter) {
		t.Errorf("round trip changed the event: %+v", out)
	}
}

func TestDecodeRejects(t *testing.T) {
	good, _ := codecs.ResultCodec{}.Encode(sampleResult())
	with := func(mut func(m map[string]any)) string {
		var m map[string]any
		_ = json.Unmarshal(good, &m)
		mut(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	cases := []struct {
		name, in, want string
	}{
		{"garbage", "\x00\x01binary", "invalid json"},
		{"truncated", string(good[:len(good)/2]), "invalid json"},
		{"empty", "", "invalid json"},
		{"trailing data", string(good) + "{}", "trailing data"},
		{"future version", with(func(m map[string]any) { m["v"] = 2 }), "unsupported version 2"},
		{"no version", with(func(m map[string]any) { delete(m, "v") }), "unsupported version 0"},
		{"unknown field", with(func(m map[string]any) { m["colour"] = "red" }), "unknown field \"colour\""},
		{"missing url", with(func(m map[string]any) { delete(m, "url") }), "missing field \"url\""},
		{"missing event_id", with(func(m map[string]any) { delete(m, "event_id") }), "missing field \"event_id\""},
		{"wrong type", with(func(m map[string]any) { m["status_code"] = "200" }), "cannot unmarshal string"},
		{"bad outcome", with(func(m map[string]any) { m["outcome"] = "sideways" }), "want up or down"},
		{"down without kind", with(func(m map[string]any) { m["error_kind"] = nil }), "required when outcome is down"},
		{"unknown kind", with(func(m map[string]any) { m["error_kind"] = "gremlins" }), "unknown kind"},
		{"negative time", with(func(m map[string]any) { m["dns_ms"] = -1 }), "out of range"},
		{"huge time", with(func(m map[string]any) { m["response_time_ms"] = 1e300 }), "out of range"},
		{"status out of range", with(func(m map[string]any) { m["status_code"] = 100000 }), "out of range"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := codecs.DecodeResult([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("DecodeResult error = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := codecs.DecodeResult([]byte(with(func(m map[string]any) { m["v"] = 7 }))); !errors.Is(err, codecs.ErrVersion) {
		t.Errorf("future version error %v is not ErrVersion", err)
	}
}

func TestOtherPayloadsRoundTrip(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC)
	w := &codecs.Window{URL: "https://a/", WindowStart: now, WindowEnd: now.Add(5 * time.Minute), Checks: 3, Failures: 1,
		Responses: 2, ResponseMinMS: ptr(1.0), StatusCounts: map[string]int64{"200": 2, "0": 1}, Revision: 2}
	data, err := codecs.WindowCodec{}.Encode(w)
	if err != nil {
		t.Fatal(err)
	}
	got, err := codecs.DecodeWindow(data)
	if err != nil || got.Revision != 2 || got.StatusCounts["0"] != 1 {
		t.Fatalf("window round trip: %+v, %v", got, err)
	}
	bad := *w
	bad.Failures = 9
	data, _ = codecs.WindowCodec{}.Encode(&bad)
	if _, err := codecs.DecodeWindow(data); err == nil {
		t.Error("window with more failures than checks decoded")
	}

	r := &codecs.Request{RequestID: "r", URL: "https://a/", ScheduledAt: now, NextAt: now.Add(time.Minute), Method: "GET", TimeoutMS: 5000}
	data, _ = codecs.RequestCodec{}.Encode(r)
	if got, err := codecs.DecodeRequest(data); err != nil || got.Timeout() != 5*time.Second {
		t.Fatalf("request round trip: %+v, %v", got, err)
	}

	d := &codecs.DeadLetter{Topic: "t", Partition: 1, Offset: 42, Value: []byte{0xff, 0}, Reason: "invalid json", FailedAt: now}
	data, _ = codecs.DeadLetterCodec{}.Encode(d)
	if got, err := codecs.DecodeDeadLetter(data); err != nil || got.Value[0] != 0xff || got.Offset != 42 {
		t.Fatalf("dead letter round trip: %+v, %v", got, err)
	}
	if _, err := (codecs.ResultCodec{}).Encode(w); err == nil {
		t.Error("ResultCodec encoded a Window")
	}
}

// TestDeadLetterReasonOneLine: a strict decode that finds several problems
// joins them with newlines; the dead letter carries them on one line, so
// that an operator reading the topic line by line sees one record per line.
func TestDeadLetterReasonOneLine(t *testing.T) {
	_, err := codecs.DecodeResult([]byte(`{"v":1}`))
	if err == nil || !strings.Contains(err.Error(), "\n") {
		t.Fatalf("want a multi-line decode error to start from, got %v", err)
	}
	data, err := codecs.DeadLetterCodec{}.Encode(&codecs.DeadLetter{Topic: "t", Reason: "decode result: " + err.Error()})
	if err != nil {
		t.Fatal(err)
	}
	got, err := codecs.DecodeDeadLetter(data)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(got.Reason, "\r\n") || !strings.Contains(got.Reason, "; ") {
		t.Errorf("reason = %q, want the errors on one line separated by \"; \"", got.Reason)
	}
}
