package scheduler_test

import (
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/scheduler"
)

// checkersModel stands in for the url_checker of one partition: it takes
// at most perTick of the requests produced, each tick of the test.
type checkersModel struct {
	adm             *scheduler.Admission
	produced, taken int64 // offsets: next to produce, next to take
}

func (m *checkersModel) store(*codecs.Request) error {
	m.adm.Produced(0, m.produced)
	m.produced++
	return nil
}

func (m *checkersModel) take(perTick int64) {
	n := min(perTick, m.produced-m.taken)
	for range n {
		m.adm.Taken(0, m.taken, false)
		m.taken++
	}
}

// TestAdmissionShedsToCapacityAndRecovers: 300 sites at 1 s, checkers able
// to take 100 requests a second. The scheduler must request about what the
// checkers take (not 300 a second, two thirds of which would go stale),
// keep the backlog short, give every site its turn, and request every slot
// again once the checkers keep up.
func TestAdmissionShedsToCapacityAndRecovers(t *testing.T) {
	adm := new(scheduler.Admission)
	adm.Assigned([]int32{0})
	m := &checkersModel{adm: adm}
	reg := prometheus.NewRegistry()
	_, clock, rec := start(t, sites(300, time.Second, "a"), t0, scheduler.Options{Admission: adm, Registerer: reg, Grace: -1})
	rec.fail = m.store

	var sumBacklog, ticks int64
	step := func(until time.Time, perTick int64, maxBacklog *int64) {
		for now := clock.Now(); now.Before(until); now = now.Add(scheduler.AdmissionTick) {
			clock.runUntil(t, now.Add(scheduler.AdmissionTick))
			m.take(perTick)
			if maxBacklog != nil {
				*maxBacklog = max(*maxBacklog, m.produced-m.taken)
				sumBacklog += m.produced - m.taken
				ticks++
			}
		}
	}

	// Overload: 10 a tick is 100 a second.
	step(t0.Add(10*time.Second), 10, nil)
	from, before := m.produced, len(rec.all())
	var backlog int64
	step(t0.Add(30*time.Second), 10, &backlog)
	rate := float64(m.produced-from) / 20
	if rate < 90 || rate > 130 {
		t.Errorf("requested %.0f a second with checkers taking 100 a second; want about 100", rate)
	}
	// Shedding begins with half the sites waiting (150), and the backlog
	// is then drained to its target: 64 requests, the least.
	if mean := sumBacklog / ticks; backlog > 200 || mean > 100 {
		t.Errorf("backlog at most %d, on average %d requests; want it drained from 150 to about 64", backlog, mean)
	}
	perSite := map[string]int{}
	for _, f := range rec.all()[before:] {
		perSite[f.req.URL]++
	}
	counts := make([]int, 0, len(perSite))
	for _, n := range perSite {
		counts = append(counts, n)
	}
	slices.Sort(counts)
	if len(counts) < 300 || counts[0] < 3 || counts[len(counts)-1] > 2*counts[0]+2 {
		t.Errorf("requests per site over 20 s of shedding: %d sites requested, fewest %d, most %d; want all 300, each about 6-7 times", len(counts), counts[0], counts[len(counts)-1])
	}
	if shed := metric(t, reg, "sitewatch_schedule_shed_slots_total"); shed < 20*150 {
		t.Errorf("shed slots counted %.0f, want the roughly 4,000 not requested", shed)
	}

	// The load goes away: the checkers take whatever comes.
	step(t0.Add(33*time.Second), 1<<30, nil)
	if f := metric(t, reg, "sitewatch_schedule_admitted_ratio"); f != 1 {
		t.Fatalf("fraction requested %.3f 3 s after the checkers caught up, want 1", f)
	}
	shed := metric(t, reg, "sitewatch_schedule_shed_slots_total")
	from = m.produced
	step(t0.Add(43*time.Second), 1<<30, nil)
	if n := m.produced - from; n != 3000 {
		t.Errorf("requested %d slots in 10 s of 300 sites at 1 s after recovering, want every one (3000)", n)
	}
	if after := metric(t, reg, "sitewatch_schedule_shed_slots_total"); after != shed {
		t.Errorf("%.0f slots shed while the checkers kept up", after-shed)
	}
}

// TestAdmissionNeverShedsAHealthyEmitter: checkers that keep up, with the
// backlog of a produce batch or two that a real pipeline has, and that
// stall for 2 s once (a slow broker, a consumer restart: a whole interval
// of requests waits, twice the half of the sites that would start
// shedding) and then catch up, leave every slot requested.
func TestAdmissionNeverShedsAHealthyEmitter(t *testing.T) {
	adm := new(scheduler.Admission)
	adm.Assigned([]int32{0})
	m := &checkersModel{adm: adm}
	reg := prometheus.NewRegistry()
	_, clock, rec := start(t, sites(2000, 2*time.Second, "h"), t0, scheduler.Options{Admission: adm, Registerer: reg, Grace: -1})
	rec.fail = m.store
	for now := t0; now.Before(t0.Add(20 * time.Second)); now = now.Add(scheduler.AdmissionTick) {
		clock.runUntil(t, now.Add(scheduler.AdmissionTick))
		// Each tick the checkers take what was produced a tick before:
		// 100 ms of requests wait, 100 of them.
		if stalled := now.Sub(t0); stalled >= 10*time.Second && stalled < 12*time.Second {
			continue
		}
		m.take(m.produced - m.taken - 100)
	}
	if shed := metric(t, reg, "sitewatch_schedule_shed_slots_total"); shed != 0 {
		t.Errorf("%.0f slots shed by an emitter whose checkers keep up", shed)
	}
	if n := len(rec.all()); n != 20000 {
		t.Errorf("%d requests in 20 s of 2000 sites at 2 s, want 20000", n)
	}
}
