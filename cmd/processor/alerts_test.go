package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/config"
	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/kafkaconn"
	"github.com/sitewatch/sitewatch/registry"
)

// alertChecks turns a pattern such as "uudddddu" into checks of site, one
// a minute from start ('u' up, 'd' down with a 503).
func alertChecks(site, pattern string, start time.Time) []*codecs.Result {
	var out []*codecs.Result
	for i, c := range pattern {
		at := start.Add(time.Duration(i) * time.Minute)
		r := &codecs.Result{
			V: 1, EventID: fmt.Sprintf("%s#%d", site, i), URL: site, ScheduledAt: at, CheckedAt: at,
			Outcome: codecs.OutcomeUp, StatusCode: 200, Checker: "test",
		}
		if c == 'd' {
			r.Outcome, r.StatusCode = codecs.OutcomeDown, 503
			kind, msg := codecs.ErrStatus, "status 503, expected 2xx or 3xx"
			r.ErrorKind, r.ErrorMessage = &kind, &msg
		}
		out = append(out, r)
	}
	return out
}

// changesBySite reads status_changes until want(changes) holds or the
// timeout passes, and returns every record, grouped by URL.
func changesBySite(t *testing.T, e *env, timeout time.Duration, want func([]*codecs.StatusChange) bool) map[string][]*codecs.StatusChange {
	t.Helper()
	cs := readTopic(t, e.addrs, topics.StatusChanges, timeout, codecs.DecodeStatusChange, want)
	out := map[string][]*codecs.StatusChange{}
	for _, c := range cs {
		out[c.URL] = append(out[c.URL], c)
	}
	return out
}

func describe(cs []*codecs.StatusChange) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "%s(%s) ", c.Kind, c.ChangeID[:8])
	}
	return b.String()
}

// groupMembers is how many members the consumer group has once stable.
func groupMembers(t *testing.T, e *env, group string) int {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(e.addrs, e.sarama())
	if err != nil {
		return 0
	}
	defer admin.Close()
	gs, err := admin.DescribeConsumerGroups([]string{group})
	if err != nil || len(gs) != 1 || gs[0].State != "Stable" {
		return 0
	}
	return len(gs[0].Members)
}

type incidentRow struct {
	url          string
	startedAt    time.Time
	ended        bool
	failedChecks int
	downID       string
}

func incidents(t *testing.T, db *pgx.Conn) []incidentRow {
	t.Helper()
	rows, err := db.Query(context.Background(), "SELECT url, started_at, ended_at IS NOT NULL, failed_checks, down_change_id FROM incidents ORDER BY url, started_at")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []incidentRow
	for rows.Next() {
		var r incidentRow
		if err := rows.Scan(&r.url, &r.startedAt, &r.ended, &r.failedChecks, &r.downID); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read incidents: %v", err)
	}
	return out
}

// TestAlertsOnePerChange: two processors on the same topics; a site that
// fails five checks and recovers gets exactly one down and one up on
// status_changes and one closed incident; a site that fails twice and a
// healthy site get nothing.
func TestAlertsOnePerChange(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	e := newEnv(t)
	db := connect(t, e.db)
	a := startProcessor(t, e.args(e.db))
	b := startProcessor(t, e.args(e.db))
	logs := testkit.SyncBuffer{}
	waitFor(t, settleTimeout, "both processors in the alerts group", &logs, func() bool { return groupMembers(t, e, "alerts") == 2 })

	start := time.Now().UTC().Add(-time.Hour).Truncate(time.Minute)
	const flaky, broken, healthy = "https://flaky.test/", "https://broken.test/", "https://healthy.test/"
	p := e.producer(t)
	// The checks land as an emitter sends them: in checked_at order over
	// both result topics, a moment apart. (A backlog whose two topics
	// start to be read at different moments can still be applied out of
	// order by the hold-back; see the package doc of processors/alerts.)
	var checks []*codecs.Result
	checks = append(checks, alertChecks(broken, "uudddddduuu", start)...)
	checks = append(checks, alertChecks(flaky, "uudduudduu", start)...)
	checks = append(checks, alertChecks(healthy, "uuuuuuuuuu", start)...)
	slices.SortStableFunc(checks, func(x, y *codecs.Result) int { return x.CheckedAt.Compare(y.CheckedAt) })
	for _, r := range checks {
		p.results([]*codecs.Result{r})
		time.Sleep(30 * time.Millisecond)
	}
	p.done()

	waitFor(t, settleTimeout, "a closed incident", bothLogs{a.logs, b.logs}, func() bool {
		rows := incidents(t, db)
		return len(rows) == 1 && rows[0].ended
	})
	// Give a second copy of a change the time to show up, if there were one.
	time.Sleep(2 * time.Second)
	got := changesBySite(t, e, 5*time.Second, func([]*codecs.StatusChange) bool { return false })
	if d := describe(got[broken]); len(got[broken]) != 2 || got[broken][0].Kind != codecs.ChangeDown || got[broken][1].Kind != codecs.ChangeUp {
		t.Errorf("broken site: changes %s, want exactly one down and one up", d)
	}
	for _, site := range []string{flaky, healthy} {
		if len(got[site]) != 0 {
			t.Errorf("%s: changes %s, want none", site, describe(got[site]))
		}
	}
	rows := incidents(t, db)
	if len(rows) != 1 || rows[0].url != broken || !rows[0].startedAt.Equal(start.Add(2*time.Minute)) || rows[0].failedChecks != 6 {
		t.Errorf("incidents %+v, want one for %s from its first failure, 6 failed checks", rows, broken)
	}
	for i, p := range []*processor{a, b} {
		if code := p.stop(); code != 0 {
			t.Errorf("processor %d: exit status %d; logs:\n%s", i, code, tail(p.logs.String(), 40))
		}
	}
}

// TestAlertsKilled: the processor is killed (SIGKILL) right after it sent
// a down change, before the incident is surely written and before its
// table and offsets are surely committed. After a restart the change has
// the same change_id wherever it was derived again, and incidents holds
// one row per down period, closed by the recovery.
func TestAlertsKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	e := newEnv(t)
	db := connect(t, e.db)
	start := time.Now().UTC().Add(-time.Hour).Truncate(time.Minute)
	const site = "https://broken.test/"
	checks := alertChecks(site, "uuddddduudddduu", start)

	c := startChild(t, e.args(e.db))
	p := e.producer(t)
	p.results(checks[:6]) // up, up, down ×4: the down change is due
	p.done()
	got := changesBySite(t, e, settleTimeout, func(cs []*codecs.StatusChange) bool { return len(cs) > 0 })
	c.kill()
	if len(got[site]) == 0 {
		t.Fatalf("no down change before the kill; logs:\n%s", tail(c.logs.String(), 40))
	}

	p = e.producer(t)
	p.results(checks[6:])
	p.done()
	proc := startProcessor(t, e.args(e.db))
	waitFor(t, settleTimeout, "two closed incidents", proc.logs, func() bool {
		rows := incidents(t, db)
		return len(rows) == 2 && rows[0].ended && rows[1].ended
	})
	time.Sleep(time.Second)
	got = changesBySite(t, e, 5*time.Second, func([]*codecs.StatusChange) bool { return false })
	ids := map[string]map[string]bool{}
	for _, ch := range got[site] {
		if ids[ch.Kind] == nil {
			ids[ch.Kind] = map[string]bool{}
		}
		ids[ch.Kind][ch.ChangeID] = true
	}
	if len(ids[codecs.ChangeDown]) != 2 || len(ids[codecs.ChangeUp]) != 2 {
		t.Errorf("changes %s: want two distinct downs and two distinct ups (copies of one change share its id)", describe(got[site]))
	}
	rows := incidents(t, db)
	if len(rows) != 2 || !rows[0].startedAt.Equal(start.Add(2*time.Minute)) || !rows[1].startedAt.Equal(start.Add(9*time.Minute)) {
		t.Errorf("incidents %+v, want two, from %v and %v", rows, start.Add(2*time.Minute), start.Add(9*time.Minute))
	}
	t.Logf("status_changes after the kill and restart: %s", describe(got[site]))
	if code := proc.stop(); code != 0 {
		t.Fatalf("exit status %d; logs:\n%s", code, tail(proc.logs.String(), 40))
	}
}

// TestAlertsThresholdsFromRegistry: a site added to the sites registry
// (as the sites API does) with alert: {failures: 1, successes: 1} and a
// name is alerted by those thresholds and under that name, with no -sites
// file: the processor follows sitewatch_sites. By the defaults (3 and 2)
// the single failure would alert nobody.
func TestAlertsThresholdsFromRegistry(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	e := newEnv(t)
	const url = "https://registry.test/"
	site, _, err := config.ParseSiteJSON("test", []byte(`{"url": "`+url+`", "name": "From the registry", "alert": {"failures": 1, "successes": 1}}`))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	k := &kafkaconn.Options{Brokers: e.addrs, Partitions: testPartitions, Replication: 1}
	if err := k.EnsureSitesTopic(ctx, e.sarama(), slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(registry.Config{Brokers: e.addrs, Sarama: e.sarama(), Topic: string(topics.Sites), DeadLetters: string(topics.DeadLetters)})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if err := reg.Put(ctx, site, codecs.OwnerAPI); err != nil {
		t.Fatal(err)
	}
	proc := startProcessor(t, e.args(e.db))
	p := e.producer(t)
	p.results(alertChecks(url, "uuduu", time.Now().UTC().Add(-time.Hour).Truncate(time.Minute)))
	p.done()
	got := changesBySite(t, e, settleTimeout, func(cs []*codecs.StatusChange) bool { return len(cs) >= 2 })[url]
	if len(got) != 2 || got[0].Kind != codecs.ChangeDown || got[1].Kind != codecs.ChangeUp || got[0].Consecutive != 1 {
		t.Fatalf("changes %s, want down after 1 failure, then up after 1 success; logs:\n%s", describe(got), tail(proc.logs.String(), 40))
	}
	if got[0].Name != "From the registry" {
		t.Errorf("change names the site %q, want the registry's name", got[0].Name)
	}
	if code := proc.stop(); code != 0 {
		t.Errorf("processor: exit status %d", code)
	}
}

// TestAlertsQuorumOfRegions: two regions check two sites. On the first,
// one region sees it down while the other sees it up (no down), until
// both see it down: one down, at the check that made the quorum, listing
// both regions. The second is down in both and recovers in both: one
// down and one up, each listing both regions.
func TestAlertsQuorumOfRegions(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	e := newEnv(t)
	const split, both = "https://split.test/", "https://both.test/"
	start := time.Now().UTC().Add(-time.Hour).Truncate(time.Minute)
	regional := func(site, region, pattern string) []*codecs.Result {
		rs := alertChecks(site, pattern, start)
		for _, r := range rs {
			r.Region = region
			r.EventID += "@" + region
			if region == "us" {
				// The other region's check of a slot runs a little later.
				r.CheckedAt = r.CheckedAt.Add(3 * time.Second)
			}
		}
		return rs
	}
	// Slots 0-1 up everywhere; eu fails from slot 2, us only from slot 8.
	var rs []*codecs.Result
	rs = append(rs, regional(split, "eu", "uudddddddddd")...)
	rs = append(rs, regional(split, "us", "uuuuuuuuddd")...)
	rs = append(rs, regional(both, "eu", "uudddduuu")...)
	rs = append(rs, regional(both, "us", "uudddduuu")...)
	// Produced in checked_at order, as live regions' results land: a
	// region whose results reach a topic more than 1.5 intervals behind
	// the other's does not count until they do.
	slices.SortStableFunc(rs, func(a, b *codecs.Result) int { return a.CheckedAt.Compare(b.CheckedAt) })
	proc := startProcessor(t, e.args(e.db))
	p := e.producer(t)
	p.results(rs)
	p.done()
	done := func(cs []*codecs.StatusChange) bool {
		n := map[string]int{}
		for _, c := range cs {
			n[c.URL]++
		}
		return n[split] >= 1 && n[both] >= 2
	}
	got := changesBySite(t, e, settleTimeout, done)
	s := got[split]
	if len(s) != 1 || s[0].Kind != codecs.ChangeDown || s[0].EventID != split+"#10@us" ||
		strings.Join(s[0].Regions, ",") != "eu,us" {
		t.Errorf("split site: changes %s (first event %v), want one down at us's third failure listing eu,us; logs:\n%s",
			describe(s), eventIDs(s), tail(proc.logs.String(), 40))
	}
	b := got[both]
	if len(b) != 2 || b[0].Kind != codecs.ChangeDown || b[1].Kind != codecs.ChangeUp ||
		strings.Join(b[0].Regions, ",") != "eu,us" || strings.Join(b[1].Regions, ",") != "eu,us" ||
		b[0].EventID != both+"#4@us" || b[1].EventID != both+"#7@us" {
		t.Errorf("both regions: changes %s (events %v), want down at us#4 and up at us#7, listing eu,us", describe(b), eventIDs(b))
	}
	if code := proc.stop(); code != 0 {
		t.Errorf("processor: exit status %d", code)
	}
}

func eventIDs(cs []*codecs.StatusChange) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.EventID)
	}
	return out
}

// bothLogs shows two processors' logs, each under a header: the change
// may have been made by either.
type bothLogs [2]fmt.Stringer

func (l bothLogs) String() string {
	return "processor a:\n" + tail(l[0].String(), 60) + "\nprocessor b:\n" + tail(l[1].String(), 60)
}
