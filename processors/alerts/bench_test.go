package alerts

import (
	"strconv"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
)

// BenchmarkProcess measures one URL's events through the alerts logic as
// the goka callback runs it: decode the event, decode the URL's state,
// hold and apply, encode the state. goka's own overhead (Kafka, table
// writes) is not included. "live": nothing waits, each event is applied at
// once; "catch-up": the other input topic holds events back, so the URL
// keeps maxPending of them in its state and each new one makes the oldest
// go (the results sink's backlog with the alerts group on).
func BenchmarkProcess(b *testing.B) {
	for _, bc := range []struct {
		name string
		held int
	}{{"live", 0}, {"catch-up", maxPending}} {
		b.Run(bc.name, func(b *testing.B) {
			r := rules{failures: 3, successes: 2, certWarning: 14 * 24 * time.Hour}
			base := t0
			tmpl := check("https://shop.example/", 0, true)
			stored, err := stateCodec{}.Encode(&state{})
			if err != nil {
				b.Fatal(err)
			}
			var stateBytes int
			b.ResetTimer()
			for i := range b.N {
				tmpl.EventID = "00000000-0000-4000-8000-" + strconv.Itoa(100000000000+i)
				tmpl.CheckedAt = base.Add(time.Duration(i) * time.Second)
				raw, err := codecs.ResultCodec{}.Encode(tmpl)
				if err != nil {
					b.Fatal(err)
				}
				ev, err := codecs.DecodeResult(raw)
				if err != nil {
					b.Fatal(err)
				}
				v, err := stateCodec{}.Decode(stored)
				if err != nil {
					b.Fatal(err)
				}
				st := v.(*state)
				benchConsume(st, r, ev, bc.held)
				if stored, err = (stateCodec{}).Encode(st); err != nil {
					b.Fatal(err)
				}
				stateBytes += len(stored)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(stateBytes)/float64(b.N), "state-bytes/event")
		})
	}
}

// benchConsume is Processor.consume without goka: ev is held, and the
// oldest held events beyond held are applied.
func benchConsume(st *state, r rules, ev *codecs.Result, held int) {
	st.URL = ev.URL
	st.hold(&pending{Result: ev, Topic: "status_request_succeeded", Offset: 1, HeldAt: time.Now()})
	for st.holding() > held {
		e := st.oldestHeld()
		st.held.dropFirst()
		r.apply(st, e.Result, Rule{})
	}
}
