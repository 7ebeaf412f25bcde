package faults

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/processors/urlchecker"
)

// Fleet timing: sarama's defaults, which the emitter keeps. A killed
// member's partitions are given away once the coordinator has not heard
// from it for the session timeout; the others learn of the rebalance at
// their next heartbeat.
const (
	fleetSessionTimeout = 10 * time.Second
	fleetHeartbeat      = 3 * time.Second
)

// TestEmitterFleetRequestsEachSlotOnce runs three emitters (the real
// binary) in one check group on a 12-partition cluster, with 2,000 sites
// every 2 s against one local target. Each emitter schedules only the
// sites of the request partitions its url_checker owns, so:
//
//   - while the group is stable, every slot is requested once and checked
//     once (where three emitters scheduling every site made three
//     requests per slot, two of them decoded only to be dropped);
//   - after one emitter is killed (SIGKILL), its sites are checked again
//     by the others within the session timeout, the heartbeat that tells
//     them and one interval;
//   - with two emitters left, every slot is again requested and checked
//     once: requests per slot equal the sites, whatever the emitters.
func TestEmitterFleetRequestsEachSlotOnce(t *testing.T) {
	skipShort(t)
	const (
		parts    = 12
		nSites   = 2000
		interval = 2 * time.Second
		emitters = 3
	)
	cluster, addrs := testkit.Kafka(t, kfake.SeedTopics(parts, allTopics()...))
	logGroupsOnFailure(t, cluster)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(target.Close)
	var b strings.Builder
	fmt.Fprintf(&b, "defaults:\n  interval: %s\n  timeout: 1s\nsites:\n", interval)
	sites := make([]testkit.Site, nSites)
	for i := range sites {
		sites[i] = testkit.Site{URL: fmt.Sprintf("%s/s/%d", target.URL, i), Interval: interval}
		fmt.Fprintf(&b, "  - url: %s\n", sites[i].URL)
	}
	path := filepath.Join(t.TempDir(), "sites.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	log, err := testkit.FollowSlots(addrs, map[string]string{string(topics.Requests): ""},
		[]string{string(topics.Succeeded), string(topics.Failed)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(log.Close)

	children := map[string]*child{}
	for i := range emitters {
		id := fmt.Sprintf("em%d", i+1)
		children[id] = startChild(t, id, bins.emitter, []string{
			"-sites", path, "-brokers", testkit.JoinAddrs(addrs), "-topic-partitions", strconv.Itoa(parts), "-instance-id", id,
		})
	}
	group := "url_checker"
	stable := func(members int, alive []string) int32 {
		t.Helper()
		var gen int32
		began := time.Now()
		defer func() {
			t.Logf("%d emitters sharing the partitions after %v", members, time.Since(began).Round(100*time.Millisecond))
		}()
		waitFor(t, 120*time.Second, fmt.Sprintf("%d emitters sharing the %d partitions", members, parts), func() (bool, string) {
			gi := cluster.GroupInfo(group)
			if gi == nil || gi.State != "Stable" || len(gi.Members) != members {
				if gi == nil {
					return false, "no group yet"
				}
				return false, fmt.Sprintf("group %s, %d members", gi.State, len(gi.Members))
			}
			var owned, scheduled float64
			for _, id := range alive {
				owned += children[id].metric("sitewatch_schedule_owned_partitions")
				scheduled += children[id].metric("sitewatch_schedule_sites")
				// Ready: url_checker consuming, partitions assigned.
				if h := health(t, children[id]); h != "ok" {
					return false, id + " /healthz: " + h
				}
			}
			gen = gi.Epoch
			return owned == parts && scheduled == nSites, fmt.Sprintf("emitters own %v partitions, schedule %v sites", owned, scheduled)
		})
		return gen
	}
	stale := func(ids []string) float64 {
		var n float64
		for _, id := range ids {
			n += children[id].metric("sitewatch_requests_stale_total")
		}
		return n
	}
	counters := func(ids []string) string {
		var b strings.Builder
		for _, id := range ids {
			fmt.Fprintf(&b, "%s:", id)
			for _, m := range []string{"sitewatch_schedule_requests_total", "sitewatch_schedule_missed_slots_total", "sitewatch_requests_dropped_total",
				"sitewatch_requests_emit_errors_total", "sitewatch_schedule_emit_errors_total", "sitewatch_requests_stale_total", "sitewatch_requests_duplicate_total", "sitewatch_checks_total"} {
				fmt.Fprintf(&b, " %s=%v", strings.TrimPrefix(m, "sitewatch_"), children[id].metric(m))
			}
			b.WriteString("; ")
		}
		return b.String()
	}
	// window waits out n intervals of a stable group and tallies the
	// slots that began in them once their checks have been read, with the
	// requests the emitters skipped as stale meanwhile.
	window := func(what string, n int, gen int32, alive []string) (testkit.SlotTally, time.Time, time.Time) {
		t.Helper()
		staleBefore := stale(alive)
		from := time.Now().Add(interval) // slots requested under the new assignment
		to := from.Add(time.Duration(n) * interval)
		// Their requests and checks produced: two intervals leave room
		// for a starved producer's batches.
		time.Sleep(time.Until(to) + 2*interval)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := log.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if gi := cluster.GroupInfo(group); gi == nil || gi.Epoch != gen {
			t.Fatalf("%s: the group rebalanced during the window (now %+v, was generation %d)", what, gi, gen)
		}
		tl := log.Tally("", sites, from, to)
		t.Logf("%s: window %s to %s", what, from.Format("15:04:05.000"), to.Format("15:04:05.000"))
		t.Logf("%s, stable: %s; by checker %v; unrequested %v, unchecked %v", what, tl, tl.Checkers, slotNames(tl.Unrequested, parts), slotNames(tl.Unchecked, parts))
		t.Logf("%s: counters %s", what, counters(alive))
		onceEach(t, what, tl, stale(alive)-staleBefore)
		return tl, from, to
	}
	// owners names the partitions each member of the group consumes.
	owners := func() map[string][]int32 {
		out := map[string][]int32{}
		if gi := cluster.GroupInfo(group); gi != nil {
			for _, m := range gi.Members {
				id := strings.Split(strings.TrimPrefix(m.MemberID, group+"-"), "-")[0]
				out[id] = m.Assignment[string(topics.Requests)]
			}
		}
		return out
	}

	alive := []string{"em1", "em2", "em3"}
	gen := stable(emitters, alive)
	three, _, to := window("3 emitters", 5, gen, alive)
	if len(three.Checkers) != emitters {
		t.Errorf("slots checked by %v, want each of the %d emitters checking its share", three.Checkers, emitters)
	}

	// SIGKILL em2: no leaving the group, no flush.
	victim := "em2"
	var mine []testkit.Site
	victimParts := owners()[victim]
	for _, s := range sites {
		if slices.Contains(victimParts, urlchecker.RequestPartition(s.URL, parts)) {
			mine = append(mine, s)
		}
	}
	if len(mine) == 0 {
		t.Fatalf("%s owns no partition: %v", victim, owners())
	}
	children[victim].kill()
	killed := time.Now()
	alive = slices.DeleteFunc(alive, func(id string) bool { return id == victim })
	bound := fleetSessionTimeout + fleetHeartbeat + interval
	var (
		requested, checked map[string]time.Time
		reassigned         time.Time // when the group was seen stable without the victim
	)
	waitFor(t, bound+60*time.Second, fmt.Sprintf("the %d sites of the killed emitter requested and checked again", len(mine)), func() (bool, string) {
		if gi := cluster.GroupInfo(group); reassigned.IsZero() && gi != nil && gi.State == "Stable" && len(gi.Members) == emitters-1 {
			reassigned = time.Now()
		}
		// The victim is dead: any request after the kill is another's.
		requested = log.FirstRequested("", mine, killed, time.Now())
		checked = log.FirstChecked("", victim, mine, killed, time.Now())
		return len(requested) == len(mine) && len(checked) == len(mine),
			fmt.Sprintf("%d requested, %d checked of %d", len(requested), len(checked), len(mine))
	})
	latest := func(m map[string]time.Time) time.Duration {
		var d time.Duration
		for _, at := range m {
			d = max(d, at.Sub(killed))
		}
		return d
	}
	recovery, checkRecovery := latest(requested), latest(checked)
	afterAssignment := killed.Add(recovery).Sub(reassigned)
	t.Logf("killed %s owning partitions %v (%d sites): all requested again %v after the kill (session timeout %v + heartbeat %v + interval %v = %v), "+
		"%v after the group was seen rebalanced (%v after the kill); all checked again %v after the kill",
		victim, victimParts, len(mine), recovery.Round(10*time.Millisecond), fleetSessionTimeout, fleetHeartbeat, interval, bound,
		afterAssignment.Round(10*time.Millisecond), reassigned.Sub(killed).Round(10*time.Millisecond), checkRecovery.Round(10*time.Millisecond))
	// The emitters' part: a taken partition's sites start at their next
	// slot (the group is polled every 200 ms, hence the slack).
	if afterAssignment > interval+time.Second {
		t.Errorf("the killed emitter's sites requested again %v after the group rebalanced, want within one interval (%v)", afterAssignment, interval)
	}
	// Kafka's part: the coordinator drops the member after the session
	// timeout, the others hear of it at their next heartbeat, and the
	// rebalance (leaving the old session, rejoining) takes a few seconds
	// more on a loaded machine.
	if recovery > bound+5*time.Second {
		t.Errorf("the killed emitter's sites requested again after %v, want within %v and the rebalance", recovery, bound)
	}

	gen = stable(emitters-1, alive)
	two, from2, _ := window("2 emitters", 4, gen, alive)
	handover := log.Tally("", sites, to, from2)
	t.Logf("around the kill (slots %v to %v): %s", to.Format(time.TimeOnly), from2.Format(time.TimeOnly), handover)
	if n := log.Undecodable(); n > 0 {
		t.Errorf("%d undecodable records on the request and result topics", n)
	}
	record(t, figure{fault: "emitter kill -9 in a fleet of 3 (12 partitions)", injected: 1, produced: three.Checks + two.Checks, stored: three.Checked + two.Checked,
		dupes: three.Twice + two.Twice, recovery: recovery,
		note: fmt.Sprintf("requests per slot %.3f with 3 emitters, %.3f with 2 (%d sites); checked again after %v; slots around the kill: %d not checked, %d twice",
			three.RequestsPerSlot(), two.RequestsPerSlot(), nSites, checkRecovery.Round(10*time.Millisecond), handover.Slots-handover.Checked, handover.Twice)})
}

func slotNames(ks []testkit.SlotKey, parts int32) []string {
	var out []string
	for _, k := range ks {
		out = append(out, fmt.Sprintf("%s@%s(p%d)", k.URL[strings.LastIndex(k.URL, "/")+1:], time.Unix(0, k.Slot).Format("15:04:05.000"), urlchecker.RequestPartition(k.URL, parts)))
	}
	return out
}

// onceEach fails unless every slot of the tally was requested once, and
// checked at most once. A slot not checked must be one of the requests
// the emitters skipped as stale (skipped, staleDelta of them during the
// window): a machine too busy for the load skips slots, it never checks
// one twice or late, and it is logged.
func onceEach(t *testing.T, what string, tl testkit.SlotTally, skipped float64) {
	t.Helper()
	if tl.Slots == 0 {
		t.Fatalf("%s: no slots in the window", what)
	}
	if tl.Requests != tl.Slots || tl.Requested != tl.Slots {
		t.Errorf("%s: %d requests for %d slots (%d slots requested), want one request per slot", what, tl.Requests, tl.Slots, tl.Requested)
	}
	if tl.Twice != 0 {
		t.Errorf("%s: %d slots checked twice", what, tl.Twice)
	}
	if missing := tl.Slots - tl.Checked; missing > 0 {
		if float64(missing) > skipped {
			t.Errorf("%s: %d of %d slots not checked, and only %v requests skipped as stale", what, missing, tl.Slots, skipped)
		} else {
			t.Logf("%s: %d of %d slots not checked: the emitters were too slow for the load (%v requests skipped as stale)", what, missing, tl.Slots, skipped)
		}
	}
	if tl.Late != 0 {
		// The url_checker tests staleness before handing a check to a
		// worker; a starved machine can start the check after next_at.
		t.Logf("%s: %d checks started after their slot ended (starved between the stale test and the check)", what, tl.Late)
	}
}

// health is a child's /healthz answer, trimmed.
func health(t *testing.T, c *child) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.metricsURL(), "/metrics")+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err.Error()
	}
	return strings.TrimSpace(string(body))
}
