package codecs

import "testing"

// BenchmarkDecodeResult decodes a typical result event, as each of the
// processor's three consumers of the result topics does for every event.
func BenchmarkDecodeResult(b *testing.B) {
	data := []byte(`{"v":1,"event_id":"0b6f4b7c2d9e4f30a1c2b3d4e5f60718","url":"https://shop.example.com/health","scheduled_at":"2026-11-29T12:05:00Z","checked_at":"2026-11-29T12:05:00.003456789Z","outcome":"up","status_code":200,"response_time_ms":12.5,"dns_ms":1.25,"connect_ms":2,"tls_ms":3.5,"ttfb_ms":8,"transfer_ms":0.5,"body_bytes":1256,"regexp":"all good","regexp_matched":true,"error_kind":null,"error_message":null,"checker":"host-1-4242","region":"default"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeResult(data); err != nil {
			b.Fatal(err)
		}
	}
}
