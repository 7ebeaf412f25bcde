package windows

import (
	"strconv"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
)

// BenchmarkProcess measures one URL's events through the window logic as
// the goka callback runs it: decode the event, decode the URL's state,
// apply, encode the state and any emitted window. goka's own overhead
// (Kafka, changelog writes) is not included. The interval sets how many
// checks, and so events, a window holds: 5 at 60 s, 300 at 1 s. ids=slot
// are an emitter's events (kept by slot), ids=own those of a producer with
// ids of its own (kept by id, as every event was before state version 4).
func BenchmarkProcess(b *testing.B) {
	for _, bc := range []struct {
		name     string
		interval time.Duration
	}{{"interval=60s", time.Minute}, {"interval=10s", 10 * time.Second}, {"interval=1s", time.Second}} {
		for _, ids := range []string{"slot", "own"} {
			b.Run(bc.name+"/ids="+ids, func(b *testing.B) { benchmarkProcess(b, bc.interval, ids == "slot") })
		}
	}
}

func benchmarkProcess(b *testing.B, interval time.Duration, bySlot bool) {
	{
		{
			rules := params{size: DefaultWindowSize, grace: DefaultGrace, idleAfter: DefaultIdleAfter, forgetAfter: DefaultForgetAfter}
			base := at(12, 0, 0)
			template := result(site, "", base, responseMS(123.4))
			stored, err := stateCodec{}.Encode(&state{})
			if err != nil {
				b.Fatal(err)
			}
			var stateBytes, emitted int
			b.ResetTimer()
			for i := range b.N {
				template.CheckedAt = base.Add(time.Duration(i) * interval)
				template.ScheduledAt = template.CheckedAt
				template.EventID = "00000000-0000-4000-8000-" + strconv.Itoa(100000000000+i)
				if bySlot {
					template.EventID = codecs.SlotEventID(site, template.ScheduledAt, codecs.DefaultRegion)
				}
				raw, err := codecs.ResultCodec{}.Encode(template)
				if err != nil {
					b.Fatal(err)
				}
				r, err := codecs.DecodeResult(raw)
				if err != nil {
					b.Fatal(err)
				}
				v, err := stateCodec{}.Decode(stored)
				if err != nil {
					b.Fatal(err)
				}
				st := v.(*state)
				verdict, out := rules.apply(st, r, r.CheckedAt, r.CheckedAt)
				if verdict != applied {
					b.Fatalf("event %d: verdict %v", i, verdict)
				}
				for _, e := range out {
					if _, err := (codecs.WindowCodec{}).Encode(e.window); err != nil {
						b.Fatal(err)
					}
					emitted++
				}
				if stored, err = (stateCodec{}).Encode(st); err != nil {
					b.Fatal(err)
				}
				stateBytes += len(stored)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(stateBytes)/float64(b.N), "state-bytes/event")
		}
	}
}

// BenchmarkApply is the window logic alone, without any encoding.
func BenchmarkApply(b *testing.B) {
	rules := params{size: DefaultWindowSize, grace: DefaultGrace, idleAfter: DefaultIdleAfter, forgetAfter: DefaultForgetAfter}
	base := at(12, 0, 0)
	st := &state{}
	rs := make([]*codecs.Result, 1000)
	for i := range rs {
		rs[i] = result(site, "id-"+strconv.Itoa(i), base, responseMS(float64(50+i%300)))
	}
	b.ResetTimer()
	for i := range b.N {
		r := rs[i%len(rs)]
		r.CheckedAt = base.Add(time.Duration(i) * 10 * time.Second)
		r.EventID = "id-" + strconv.Itoa(i)
		rules.apply(st, r, r.CheckedAt, r.CheckedAt)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
