package scheduler_test

import (
	"hash/fnv"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitewatch/sitewatch/config"
	"github.com/sitewatch/sitewatch/scheduler"
)

// partitions is the request partition count of the share tests.
const partitions = 12

// partitionOf stands in for the producer's partitioner: any stable
// function of the URL will do for the scheduler.
func partitionOf(url string, count int32) int32 {
	h := fnv.New32a()
	h.Write([]byte(url))
	return int32(h.Sum32() % uint32(count))
}

func share(owned ...int32) scheduler.Share {
	return scheduler.Share{Count: partitions, Owned: owned, Partition: partitionOf}
}

func sharePtr(owned ...int32) *scheduler.Share {
	sh := share(owned...)
	return &sh
}

func span(from, to int32) []int32 {
	var out []int32
	for p := from; p <= to; p++ {
		out = append(out, p)
	}
	return out
}

// slotsIn lists the slots of a site that begin in [from, to).
func slotsIn(site config.Site, from, to time.Time) []time.Time {
	var out []time.Time
	s := scheduler.SlotStart(site.URL, site.Interval, from)
	if s.Before(from) {
		s = s.Add(site.Interval)
	}
	for ; s.Before(to); s = s.Add(site.Interval) {
		out = append(out, s)
	}
	return out
}

// requestsPerSlot counts the requests for each site and slot over the
// recorders of several instances.
func requestsPerSlot(recs ...*recorder) map[string]map[time.Time]int {
	m := map[string]map[time.Time]int{}
	for _, r := range recs {
		for _, f := range r.all() {
			if m[f.req.URL] == nil {
				m[f.req.URL] = map[time.Time]int{}
			}
			m[f.req.URL][f.req.ScheduledAt]++
		}
	}
	return m
}

// checkOncePerSlot fails unless every slot of every site beginning in
// [from, to) was requested exactly once over recs, and nothing else was.
func checkOncePerSlot(t *testing.T, ss []config.Site, from, to time.Time, recs ...*recorder) {
	t.Helper()
	got := requestsPerSlot(recs...)
	bad := 0
	for _, site := range ss {
		want := slotsIn(site, from, to)
		for _, slot := range want {
			if n := got[site.URL][slot]; n != 1 && bad < 10 {
				bad++
				t.Errorf("%s slot %v requested %d times, want once (partition %d)", site.URL, slot, n, partitionOf(site.URL, partitions))
			}
		}
		if n := len(got[site.URL]); n != len(want) && bad < 10 {
			bad++
			t.Errorf("%s: %d slots requested, want the %d beginning in [%v, %v)", site.URL, n, len(want), from, to)
		}
	}
}

// TestSharesRequestEachSlotOnceWhateverTheInstances runs three schedulers
// that own a third of the partitions each: together they request every
// site once per slot, where three schedulers of every site would request
// each slot three times.
func TestSharesRequestEachSlotOnceWhateverTheInstances(t *testing.T) {
	interval := 10 * time.Second
	ss := sites(600, interval, "share")
	end := t0.Add(10 * interval)
	var recs []*recorder
	for i := range int32(3) {
		_, clock, rec := start(t, ss, t0, scheduler.Options{Grace: -1, Share: sharePtr(i, i+3, i+6, i+9)})
		clock.runUntil(t, end)
		recs = append(recs, rec)
	}
	checkOncePerSlot(t, ss, t0, end, recs...)
	total := 0
	for _, r := range recs {
		total += len(r.all())
	}
	t.Logf("3 instances, %d sites, 10 intervals: %d requests (%.2f per site and slot)", len(ss), total, float64(total)/float64(10*len(ss)))
}

// TestHandoverKeepsStayingSitesAndStartsTakenOnesAtTheirNextSlot moves
// partitions between two schedulers at one instant, as a rebalance does:
// partitions that stay keep an unbroken chain of slots, the ones handed
// over stop at the old owner and start at the new one from their next
// slot (never a slot begun before, even within the grace), so that the
// two together still request each slot once.
func TestHandoverKeepsStayingSitesAndStartsTakenOnesAtTheirNextSlot(t *testing.T) {
	interval := time.Minute
	ss := sites(400, interval, "handover")
	// Not on a slot of any site, and within a minute of many sites'
	// slots, so the default grace (2 s) would reach back across some.
	at := t0.Add(150*time.Second + 333*time.Millisecond)
	end := at.Add(5 * interval)
	a, clockA, recA := start(t, ss, t0, scheduler.Options{Share: sharePtr(span(0, 5)...)})
	b, clockB, recB := start(t, ss, t0, scheduler.Options{Share: sharePtr(span(6, 11)...)})
	for _, x := range []struct {
		s     *scheduler.Scheduler
		clock *fakeClock
		owned []int32
	}{
		{a, clockA, append(span(0, 2), span(6, 8)...)},
		{b, clockB, append(span(3, 5), span(9, 11)...)},
	} {
		x.clock.runUntil(t, at)
		before := x.clock.seq()
		if err := x.s.SetShare(share(x.owned...)); err != nil {
			t.Fatalf("SetShare: %v", err)
		}
		x.clock.idle(t, before)
		x.clock.runUntil(t, end)
	}
	// Both started with the grace: the first slots may begin up to 2 s
	// before t0.
	checkOncePerSlot(t, ss, t0.Add(-scheduler.DefaultGrace), end, recA, recB)

	gotA := recA.byURL()
	for _, site := range ss {
		p := partitionOf(site.URL, partitions)
		seq := gotA[site.URL]
		switch {
		case p <= 2: // stays with a: one unbroken chain
			for j := 1; j < len(seq); j++ {
				if d := seq[j].Sub(seq[j-1]); d != interval {
					t.Fatalf("%s (staying): slots %v and %v are %v apart", site.URL, seq[j-1], seq[j], d)
				}
			}
		case p <= 5: // handed to b
			if len(seq) > 0 && !seq[len(seq)-1].Before(at) {
				t.Errorf("%s (handed over): requested by its old owner for %v", site.URL, seq[len(seq)-1])
			}
		case p <= 8: // taken from b
			if len(seq) == 0 || seq[0].Before(at) || !seq[0].Before(at.Add(interval)) {
				t.Errorf("%s (taken over): first slot at the new owner %v, want its next slot after %v", site.URL, seq, at)
			}
		default:
			if len(seq) > 0 {
				t.Errorf("%s (never owned): requested %d times", site.URL, len(seq))
			}
		}
	}
}

// TestNoPartitionsNoRequestsAndTheMetricsSaySo: an instance that owns no
// partition (joining its group) requests nothing and says so, then starts
// each site at its next slot once it is assigned partitions.
func TestNoPartitionsNoRequestsAndTheMetricsSaySo(t *testing.T) {
	interval := 10 * time.Second
	ss := sites(300, interval, "none")
	reg := prometheus.NewRegistry()
	s, clock, rec := start(t, ss, t0, scheduler.Options{Registerer: reg, Share: sharePtr()})
	// With nothing to schedule the scheduler sets no timer: wait for it to
	// have read the sites, then move the clock.
	deadline := time.Now().Add(10 * time.Second)
	for metric(t, reg, "sitewatch_schedule_known_sites") != 300 {
		if time.Now().After(deadline) {
			t.Fatal("the scheduler never read its sites")
		}
		time.Sleep(time.Millisecond)
	}
	at := t0.Add(3*interval + 777*time.Millisecond)
	clock.set(at)
	for name, want := range map[string]float64{
		"sitewatch_schedule_owned_partitions": 0, "sitewatch_schedule_sites": 0,
	} {
		if got := metric(t, reg, name); got != want {
			t.Errorf("%s = %v without partitions, want %v", name, got, want)
		}
	}
	before := clock.seq()
	if err := s.SetShare(share(span(0, 11)...)); err != nil {
		t.Fatal(err)
	}
	clock.idle(t, before)
	end := at.Add(4 * interval)
	clock.runUntil(t, end)
	// From the next slot after the assignment: none begun before it, not
	// even within the grace.
	checkOncePerSlot(t, ss, at, end, rec)
	for name, want := range map[string]float64{
		"sitewatch_schedule_owned_partitions": 12, "sitewatch_schedule_sites": 300, "sitewatch_schedule_known_sites": 300,
	} {
		if got := metric(t, reg, name); got != want {
			t.Errorf("%s = %v owning every partition, want %v", name, got, want)
		}
	}
}

// TestReplaceAppliesOnlyToOwnedSites: registry changes (added, edited,
// removed sites) reach the requests of owned sites only, and a site
// taken over later is requested as the registry has it now.
func TestReplaceAppliesOnlyToOwnedSites(t *testing.T) {
	interval := 10 * time.Second
	ss := sites(200, interval, "reg")
	owned := span(0, 5)
	mine := func(s config.Site) bool { return slices.Contains(owned, partitionOf(s.URL, partitions)) }
	s, clock, rec := start(t, ss, t0, scheduler.Options{Grace: -1, Share: sharePtr(owned...)})
	reload := t0.Add(25*time.Second + 500*time.Millisecond)
	clock.runUntil(t, reload)

	// Edit the timeout of every site, remove the first 50, add 50.
	var next []config.Site
	for _, site := range ss[50:] {
		site.Timeout = 1234 * time.Millisecond
		next = append(next, site)
	}
	added := sites(50, interval, "reg-added")
	next = append(next, added...)
	before := clock.seq()
	if err := s.Replace(next); err != nil {
		t.Fatal(err)
	}
	clock.idle(t, before)
	takeover := reload.Add(3 * interval)
	clock.runUntil(t, takeover)
	before = clock.seq()
	if err := s.SetShare(share(span(0, 11)...)); err != nil {
		t.Fatal(err)
	}
	clock.idle(t, before)
	end := takeover.Add(3 * interval)
	clock.runUntil(t, end)

	edited := map[string]bool{}
	for _, site := range ss[50:] {
		edited[site.URL] = true
	}
	for _, f := range rec.all() {
		r := f.req
		site := config.Site{URL: r.URL}
		if f.at.Before(takeover) && !mine(site) {
			t.Fatalf("%s requested at %v before the take-over, not owned", r.URL, f.at)
		}
		if f.at.After(reload) && edited[r.URL] && r.TimeoutMS != 1234 {
			t.Fatalf("%s requested at %v with timeout %d ms, want the edit's 1234", r.URL, f.at, r.TimeoutMS)
		}
	}
	got := rec.byURL()
	for _, site := range ss[:50] {
		if seq := got[site.URL]; len(seq) > 0 && seq[len(seq)-1].After(reload) {
			t.Errorf("removed %s requested for %v", site.URL, seq[len(seq)-1])
		}
	}
	var addedMine, addedOthers int
	for _, site := range added {
		seq := got[site.URL]
		if mine(site) {
			addedMine++
			if len(seq) == 0 || seq[0].After(reload.Add(interval)) {
				t.Errorf("added owned %s: first slots %v, want within an interval of %v", site.URL, seq, reload)
			}
			continue
		}
		addedOthers++
		if len(seq) == 0 || seq[0].Before(takeover) {
			t.Errorf("added %s of another instance: slots %v, want none before the take-over at %v", site.URL, seq, takeover)
		}
	}
	if addedMine == 0 || addedOthers == 0 {
		t.Fatalf("the added sites fall %d/%d into the owned partitions: the test needs both", addedMine, addedOthers)
	}
	checkOncePerSlot(t, next, takeover, end, &recorder{got: filterAfter(rec.all(), takeover)})
}

func filterAfter(fs []fired, at time.Time) []fired {
	var out []fired
	for _, f := range fs {
		if !f.req.ScheduledAt.Before(at) {
			out = append(out, f)
		}
	}
	return out
}

// TestSetShareRefusesAnInvalidShareAndKeepsTheCurrentOne.
func TestSetShareRefusesAnInvalidShareAndKeepsTheCurrentOne(t *testing.T) {
	interval := 10 * time.Second
	ss := sites(100, interval, "bad-share")
	if _, err := scheduler.New(ss, scheduler.Options{Emit: (&recorder{}).emit, Share: &scheduler.Share{Count: 12, Owned: []int32{12}, Partition: partitionOf}}); err == nil {
		t.Error("New accepted partition 12 of 12")
	}
	s, clock, rec := start(t, ss, t0, scheduler.Options{Grace: -1, Share: sharePtr(span(0, 11)...)})
	for name, sh := range map[string]scheduler.Share{
		"no partitioner":     {Count: 12, Owned: []int32{1}},
		"partition too big":  {Count: 12, Owned: []int32{3, 12}, Partition: partitionOf},
		"negative partition": {Count: 12, Owned: []int32{-1}, Partition: partitionOf},
		"owned of none":      {Count: 0, Owned: []int32{0}, Partition: partitionOf},
	} {
		if err := s.SetShare(sh); err == nil {
			t.Errorf("%s: SetShare accepted %+v", name, sh)
		}
	}
	end := t0.Add(3 * interval)
	clock.runUntil(t, end)
	checkOncePerSlot(t, ss, t0, end, rec)
}
