package urlchecker

import (
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/checker"
	"github.com/sitewatch/sitewatch/codecs"
)

// TestResultEventIsTheContractsEvent: every kind a check can report maps to
// the contract's error_kind of the same name, and the event built from a
// check survives the strict codec with the request's identity on it.
func TestResultEventIsTheContractsEvent(t *testing.T) {
	for _, k := range checker.Kinds {
		if got, ok := errorKinds[k]; !ok || got != string(k) {
			t.Errorf("checker kind %q maps to %q", k, got)
		}
	}
	d := func(ms float64) *time.Duration { v := time.Duration(ms * float64(time.Millisecond)); return &v }
	re := "Example"
	matched := false
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	notAfter := now.Add(72 * time.Hour)
	req := &codecs.Request{RequestID: "r1", URL: "https://example.com/", ScheduledAt: now, NextAt: now.Add(time.Minute), Regexp: &re}
	cases := []struct {
		name string
		r    checker.Result
	}{
		{"up", checker.Result{URL: req.URL, CheckedAt: now.Add(time.Second), Up: true, StatusCode: 200,
			ResponseTime: d(12.5), DNS: d(1), Connect: d(2), TTFB: d(8), Transfer: d(1.5), BodyBytes: 10, RegexpMatched: &matched,
			TLSNotAfter: &notAfter}},
		{"refused", checker.Result{URL: req.URL, CheckedAt: now.Add(time.Second), Connect: d(0.25),
			ErrorKind: checker.KindConnect, ErrorMessage: "connect: connection refused"}},
	}
	for _, tc := range cases {
		ev := resultEvent(req, tc.r, "test")
		data, err := codecs.ResultCodec{}.Encode(ev)
		if err != nil {
			t.Fatalf("%s: encode: %v", tc.name, err)
		}
		got, err := codecs.DecodeResult(data)
		if err != nil {
			t.Fatalf("%s: the strict codec rejects the event: %v\n%s", tc.name, err, data)
		}
		if got.EventID != "r1" || !got.ScheduledAt.Equal(now) || got.Checker != "test" || got.Up() != tc.r.Up || got.StatusCode != tc.r.StatusCode {
			t.Errorf("%s: event %+v", tc.name, got)
		}
		if tc.r.ResponseTime != nil && (got.ResponseTimeMS == nil || *got.ResponseTimeMS != 12.5) {
			t.Errorf("%s: response_time_ms %v, want 12.5", tc.name, got.ResponseTimeMS)
		}
		if (tc.r.TLSNotAfter == nil) != (got.TLSNotAfter == nil) || (got.TLSNotAfter != nil && !got.TLSNotAfter.Equal(notAfter)) {
			t.Errorf("%s: tls_not_after %v, want %v", tc.name, got.TLSNotAfter, tc.r.TLSNotAfter)
		}
		if !tc.r.Up && (got.ErrorKind == nil || *got.ErrorKind != codecs.ErrConnect || *got.ErrorMessage != tc.r.ErrorMessage) {
			t.Errorf("%s: error %v %v", tc.name, got.ErrorKind, got.ErrorMessage)
		}
	}
}
