package codecs_test

import (
	"testing"

	"github.com/sitewatch/sitewatch/codecs"
)

// fuzzDecoder checks the properties every decoder must keep on any input:
// it never panics, and whatever it accepts re-encodes to something it
// accepts again with the same meaning.
func fuzzDecoder[T any](f *testing.F, decode func([]byte) (*T, error), encode func(*T) ([]byte, error), seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := decode(data)
		if err != nil {
			return
		}
		again, err := encode(v)
		if err != nil {
			t.Fatalf("accepted input does not re-encode: %v", err)
		}
		if _, err := decode(again); err != nil {
			t.Fatalf("re-encoded value rejected: %v\n%s", err, again)
		}
	})
}

func FuzzDecodeResult(f *testing.F) {
	good, _ := codecs.ResultCodec{}.Encode(sampleResult())
	fuzzDecoder(f, codecs.DecodeResult, func(r *codecs.Result) ([]byte, error) { return codecs.ResultCodec{}.Encode(r) },
		good, []byte(`{"v":1}`), []byte(`{"v":2,"url":"x"}`), []byte("null"), []byte("{}"))
}

func FuzzDecodeWindow(f *testing.F) {
	fuzzDecoder(f, codecs.DecodeWindow, func(w *codecs.Window) ([]byte, error) { return codecs.WindowCodec{}.Encode(w) },
		[]byte(`{"v":1,"url":"https://a/","window_start":"2026-01-01T00:00:00Z","window_end":"2026-01-01T00:05:00Z","checks":1,"failures":0,"regexp_failures":0,"responses":1,"response_min_ms":1,"response_avg_ms":1,"response_max_ms":1,"response_p50_ms":1,"response_p95_ms":1,"response_p99_ms":1,"status_counts":{"200":1},"revision":1}`))
}

func FuzzDecodeRequest(f *testing.F) {
	fuzzDecoder(f, codecs.DecodeRequest, func(r *codecs.Request) ([]byte, error) { return codecs.RequestCodec{}.Encode(r) },
		[]byte(`{"v":1,"request_id":"r","url":"https://a/","scheduled_at":"2026-01-01T00:00:00Z","next_at":"2026-01-01T00:01:00Z","method":"GET","timeout_ms":1000,"regexp":null}`))
}

func FuzzDecodeDeadLetter(f *testing.F) {
	fuzzDecoder(f, codecs.DecodeDeadLetter, func(d *codecs.DeadLetter) ([]byte, error) { return codecs.DeadLetterCodec{}.Encode(d) },
		[]byte(`{"v":1,"topic":"t","partition":0,"offset":1,"key":null,"value":"AAE=","reason":"bad","consumer":"c","failed_at":"2026-01-01T00:00:00Z"}`))
}
