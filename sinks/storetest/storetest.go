// Package storetest is one test body for every sinks.Store: the PostgreSQL
// store (sinks/postgres) and the SQLite store (sinks/sqlite) run the same
// cases from their own tests, as pgx runs one body over its Pool, Conn and
// Tx, so that the stores cannot drift apart without a failing test.
//
// The cases are what the sinks rely on: a batch written twice is stored
// once, a slot checked twice (one event_id, two checked_at) is one row and
// the first stored wins, the highest revision of a window wins and an
// equal one leaves the stored row, invalid rows come back as rejected with
// their index while the rest of the batch is written, and nil rows are
// rejected rather than dereferenced; tls_not_after is stored, and the
// incidents follow status changes (see incidents.go).
package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/sinks"
)

// Open returns a store on a fresh, migrated database, and a database/sql
// handle on the same database for reading the tables back. Both are closed
// by the test's cleanup.
type Open func(t *testing.T) (sinks.Store, *sql.DB)

// Run runs every case against the stores open returns, each on a store of
// its own.
func Run(t *testing.T, open Open) {
	for _, c := range []struct {
		name string
		run  func(t *testing.T, s sinks.Store, db *sql.DB)
	}{
		{"IdempotentResults", idempotentResults},
		{"OneRowPerEventID", oneRowPerEventID},
		{"WindowRevisions", windowRevisions},
		{"PercentilesExact", percentilesExact},
		{"RejectedRows", rejectedRows},
		{"NilRows", nilRows},
		{"TLSNotAfter", tlsNotAfter},
		{"Incidents", incidents},
		{"TwoRegions", twoRegions},
		{"BadRegion", badRegion},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s, db := open(t)
			c.run(t, s, db)
		})
	}
}

// t0 is a fixed time, one second before a UTC midnight, so that a slot and
// its repeated check fall on different days (and, in PostgreSQL, different
// daily ranges of checked_at).
var t0 = time.Date(2030, 3, 9, 23, 59, 59, 0, time.UTC)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func ptr[T any](v T) *T { return &v }

// result is a successful check of url's slot at scheduled, checked at
// checked by checker.
func result(id, url string, scheduled, checked time.Time, checker string) *codecs.Result {
	return &codecs.Result{
		V: codecs.Version, EventID: id, URL: url,
		ScheduledAt: scheduled, CheckedAt: checked,
		Outcome: codecs.OutcomeUp, StatusCode: 200,
		ResponseTimeMS: ptr(12.5), ConnectMS: ptr(1.25), TTFBMS: ptr(11.0),
		BodyBytes: 100, Checker: checker,
	}
}

// window is a valid window of url with the given revision and checks.
func window(url string, revision, checks int64) *codecs.Window {
	start := time.Date(2030, 3, 10, 12, 0, 0, 0, time.UTC)
	return &codecs.Window{
		V: codecs.Version, URL: url, WindowStart: start, WindowEnd: start.Add(5 * time.Minute),
		Checks: checks, Responses: checks,
		ResponseMinMS: ptr(10.0), ResponseAvgMS: ptr(20.0), ResponseMaxMS: ptr(30.0),
		ResponseP50MS: ptr(20.0), ResponseP95MS: ptr(29.0), ResponseP99MS: ptr(30.0),
		PercentilesExact: true,
		StatusCounts:     map[string]int64{"200": checks},
		Revision:         revision,
	}
}

func writeResults(t *testing.T, s sinks.Store, rs ...*codecs.Result) {
	t.Helper()
	if rej, err := s.WriteResults(ctx(t), rs); err != nil || len(rej) != 0 {
		t.Fatalf("WriteResults = %v, %v; want every row written", rej, err)
	}
}

func writeWindows(t *testing.T, s sinks.Store, ws ...*codecs.Window) {
	t.Helper()
	if rej, err := s.WriteWindows(ctx(t), ws); err != nil || len(rej) != 0 {
		t.Fatalf("WriteWindows = %v, %v; want every row written", rej, err)
	}
}

// rows returns, for every event_id in check_results, the checkers of its
// rows, sorted (the checker says which of several checks was kept).
func rows(t *testing.T, db *sql.DB) map[string]string {
	t.Helper()
	rs, err := db.QueryContext(ctx(t), `SELECT event_id, checker FROM check_results ORDER BY event_id, checker`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	out := map[string]string{}
	for rs.Next() {
		var id, checker string
		if err := rs.Scan(&id, &checker); err != nil {
			t.Fatal(err)
		}
		if out[id] != "" {
			checker = out[id] + "," + checker
		}
		out[id] = checker
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// storedWindow is the part of a check_windows row the cases look at.
type storedWindow struct {
	checks, revision int64
	p95              float64
	exact            bool
}

func windows(t *testing.T, db *sql.DB) map[string]storedWindow {
	t.Helper()
	rs, err := db.QueryContext(ctx(t), `SELECT url, checks, revision, response_p95_ms, percentiles_exact FROM check_windows`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	out := map[string]storedWindow{}
	for rs.Next() {
		var url string
		var w storedWindow
		if err := rs.Scan(&url, &w.checks, &w.revision, &w.p95, &w.exact); err != nil {
			t.Fatal(err)
		}
		out[url] = w
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func idempotentResults(t *testing.T, s sinks.Store, db *sql.DB) {
	var batch []*codecs.Result
	for i := range 20 {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		batch = append(batch, result(fmt.Sprintf("ev-%02d", i), fmt.Sprintf("https://site%d.example/", i%3), at, at.Add(200*time.Millisecond), "c1"))
	}
	writeResults(t, s, batch...)
	writeResults(t, s, batch...)
	writeResults(t, s, batch[5:12]...)
	got := rows(t, db)
	if len(got) != len(batch) {
		t.Fatalf("%d event_ids stored, want %d", len(got), len(batch))
	}
	for id, checkers := range got {
		if checkers != "c1" {
			t.Errorf("%s: rows by %q, want one row", id, checkers)
		}
	}
}

// A slot checked again after a crash (the url_checker re-checks a
// redelivered request) has the same event_id and scheduled_at and a later
// checked_at, here on the next UTC day and in the next five-minute window.
// Whether the repeat comes in a later batch or the same one, the slot is
// one row, and it is the first stored: the one the windows processor,
// reading the same partition in order, counts.
func oneRowPerEventID(t *testing.T, s sinks.Store, db *sql.DB) {
	u := "https://slot.example/"
	first := func(id string) *codecs.Result { return result(id, u, t0, t0.Add(time.Second), "first") }
	again := func(id string) *codecs.Result {
		r := result(id, u, t0, t0.Add(7*time.Minute), "again")
		r.Outcome, r.StatusCode, r.ErrorKind, r.ErrorMessage = codecs.OutcomeDown, 503, ptr(codecs.ErrStatus), ptr("503")
		return r
	}
	writeResults(t, s, first("later-batch"))
	writeResults(t, s, again("later-batch"))
	writeResults(t, s, first("same-batch"), again("same-batch"))
	writeResults(t, s, again("repeat-first"), first("repeat-first"))
	want := map[string]string{"later-batch": "first", "same-batch": "first", "repeat-first": "again"}
	got := rows(t, db)
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: rows by %q, want one row by %q", id, got[id], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("event_ids %v, want %v", got, want)
	}
}

// The highest revision of a window wins whatever the order of arrival; an
// equal revision leaves the row stored first (a re-sent emission).
func windowRevisions(t *testing.T, s sinks.Store, db *sql.DB) {
	u := "https://w.example/"
	for _, step := range []struct {
		name             string
		revision, checks int64
		want             int64 // checks stored after the step
	}{
		{"first emission", 2, 2, 2},
		{"older revision replayed", 1, 1, 2},
		{"late event, higher revision", 5, 5, 5},
		{"equal revision, other content", 5, 4, 5},
		{"older again", 3, 3, 5},
	} {
		writeWindows(t, s, window(u, step.revision, step.checks))
		if got := windows(t, db)[u]; got.checks != step.want || got.revision != step.want {
			t.Errorf("after %s: checks %d revision %d, want %d and %d", step.name, got.checks, got.revision, step.want, step.want)
		}
	}
	// In one batch too.
	v := "https://batch.example/"
	writeWindows(t, s, window(v, 3, 3), window(v, 7, 7), window(v, 7, 6), window(v, 4, 4))
	if got := windows(t, db)[v]; got.checks != 7 || got.revision != 7 {
		t.Errorf("batch: checks %d revision %d, want 7 and 7", got.checks, got.revision)
	}
}

// percentiles_exact is stored as the window says, both ways.
func percentilesExact(t *testing.T, s sinks.Store, db *sql.DB) {
	exact, sketched := window("https://exact.example/", 1, 3), window("https://sketch.example/", 1, 3)
	sketched.PercentilesExact, sketched.ResponseP95MS = false, ptr(29.25)
	writeWindows(t, s, exact, sketched)
	got := windows(t, db)
	if w := got["https://exact.example/"]; !w.exact || w.p95 != 29 {
		t.Errorf("exact window stored as %+v", w)
	}
	if w := got["https://sketch.example/"]; w.exact || w.p95 != 29.25 {
		t.Errorf("sketched window stored as %+v", w)
	}
}

// Rows the database refuses come back with their index in the batch and the
// constraint that refused them; the rest of the batch is written.
func rejectedRows(t *testing.T, s sinks.Store, db *sql.DB) {
	good := result("good", "https://ok.example/", t0, t0, "c1")
	badURL := result("bad-url", "ftp://files.example/", t0, t0, "c1")
	badTime := result("bad-time", "https://ok.example/", t0, t0, "c1")
	badTime.ResponseTimeMS = ptr(-1.0)
	rej, err := s.WriteResults(ctx(t), []*codecs.Result{badURL, good, badTime})
	if err != nil {
		t.Fatal(err)
	}
	checkRejected(t, "results", rej, map[int]string{0: "check_results_url_http", 2: "check_results_response_time_ms_range"})
	if got := rows(t, db); len(got) != 1 || got["good"] != "c1" {
		t.Errorf("rows %v, want only the good one", got)
	}

	w := window("https://ok.example/", 1, 3)
	badW := window("https://ok.example/other", 1, 3)
	badW.Failures = 9 // more failures than checks
	rej, err = s.WriteWindows(ctx(t), []*codecs.Window{badW, w})
	if err != nil {
		t.Fatal(err)
	}
	checkRejected(t, "windows", rej, map[int]string{0: "check_windows_failures_range"})
	if got := windows(t, db); len(got) != 1 || got["https://ok.example/"].checks != 3 {
		t.Errorf("windows %v, want only the good one", got)
	}
}

// checkRejected wants exactly the rows of want rejected, each with a reason
// naming the constraint.
func checkRejected(t *testing.T, what string, rej []sinks.Rejected, want map[int]string) {
	t.Helper()
	if len(rej) != len(want) {
		t.Fatalf("%s: rejected %v, want rows %v", what, rej, want)
	}
	for i, r := range rej {
		if i > 0 && rej[i-1].Index >= r.Index {
			t.Errorf("%s: rejected rows not in batch order: %v", what, rej)
		}
		constraint, ok := want[r.Index]
		if !ok || !strings.Contains(r.Reason, constraint) {
			t.Errorf("%s: rejected row %d (%q), want rows %v with their constraint named", what, r.Index, r.Reason, want)
		}
	}
}

// A nil row (a bug upstream) is rejected with the same reason by both
// stores, never dereferenced, and the rest of the batch is written; a batch
// of nil rows only writes nothing.
func nilRows(t *testing.T, s sinks.Store, db *sql.DB) {
	rej, err := s.WriteResults(ctx(t), []*codecs.Result{nil, result("kept", "https://ok.example/", t0, t0, "c1"), nil})
	if err != nil {
		t.Fatal(err)
	}
	if len(rej) != 2 || rej[0] != (sinks.Rejected{Index: 0, Reason: "nil result"}) || rej[1] != (sinks.Rejected{Index: 2, Reason: "nil result"}) {
		t.Errorf("WriteResults with nil rows rejected %v", rej)
	}
	if got := rows(t, db); len(got) != 1 || got["kept"] != "c1" {
		t.Errorf("rows %v, want the one non-nil result", got)
	}
	rej, err = s.WriteWindows(ctx(t), []*codecs.Window{window("https://ok.example/", 1, 1), nil})
	if err != nil {
		t.Fatal(err)
	}
	if len(rej) != 1 || rej[0] != (sinks.Rejected{Index: 1, Reason: "nil window"}) {
		t.Errorf("WriteWindows with a nil row rejected %v", rej)
	}
	if got := windows(t, db); len(got) != 1 {
		t.Errorf("windows %v, want the one non-nil window", got)
	}
	for name, write := range map[string]func() ([]sinks.Rejected, error){
		"results": func() ([]sinks.Rejected, error) { return s.WriteResults(ctx(t), []*codecs.Result{nil}) },
		"windows": func() ([]sinks.Rejected, error) { return s.WriteWindows(ctx(t), []*codecs.Window{nil}) },
	} {
		if rej, err := write(); err != nil || len(rej) != 1 || rej[0].Index != 0 {
			t.Errorf("%s: only a nil row: rejected %v, %v", name, rej, err)
		}
	}
}

// twoRegions: two regions' checks of one slot are two rows (their
// event_ids differ, see scheduler.RequestID), each with its region; their
// windows are one row per region, each keeping its own revisions; a value
// without a region is stored as region default.
func twoRegions(t *testing.T, s sinks.Store, db *sql.DB) {
	u := "https://regions.example/"
	def := result("slot-default", u, t0, t0, "c-default")
	eu := result("slot-eu", u, t0, t0.Add(time.Second), "c-eu")
	eu.Region = "eu-west"
	writeResults(t, s, def, eu, eu) // and a repeat of eu's check
	got := map[string]string{}
	rs, err := db.QueryContext(ctx(t), `SELECT region, checker FROM check_results WHERE url = 'https://regions.example/'`)
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var region, checker string
		if err := rs.Scan(&region, &checker); err != nil {
			t.Fatal(err)
		}
		got[region] += checker
	}
	rs.Close()
	if len(got) != 2 || got["default"] != "c-default" || got["eu-west"] != "c-eu" {
		t.Errorf("rows by region for one slot: %v, want one of default and one of eu-west", got)
	}

	wd, we := window(u, 2, 4), window(u, 1, 3)
	we.Region = "eu-west"
	writeWindows(t, s, wd, we)
	older := window(u, 1, 1) // default's older revision: leaves both rows
	newer := window(u, 5, 5)
	newer.Region = "eu-west"
	writeWindows(t, s, older, newer)
	ws := map[string][2]int64{}
	rs, err = db.QueryContext(ctx(t), `SELECT region, checks, revision FROM check_windows WHERE url = 'https://regions.example/'`)
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var region string
		var checks, rev int64
		if err := rs.Scan(&region, &checks, &rev); err != nil {
			t.Fatal(err)
		}
		ws[region] = [2]int64{checks, rev}
	}
	rs.Close()
	if len(ws) != 2 || ws["default"] != [2]int64{4, 2} || ws["eu-west"] != [2]int64{5, 5} {
		t.Errorf("windows by region (checks, revision): %v, want default {4 2} and eu-west {5 5}", ws)
	}
	var checks int64
	if err := db.QueryRowContext(ctx(t), `SELECT checks FROM check_windows_all_regions WHERE url = 'https://regions.example/'`).Scan(&checks); err != nil || checks != 9 {
		t.Errorf("check_windows_all_regions: %d checks (%v), want 9", checks, err)
	}
}

// A region the name rule refuses is refused by the store too, for that row.
func badRegion(t *testing.T, s sinks.Store, db *sql.DB) {
	bad := result("bad-region", "https://ok.example/", t0, t0, "c1")
	bad.Region = "EU West"
	rej, err := s.WriteResults(ctx(t), []*codecs.Result{bad, result("good", "https://ok.example/", t0, t0, "c1")})
	if err != nil {
		t.Fatal(err)
	}
	checkRejected(t, "results", rej, map[int]string{0: "check_results_region_valid"})
	w := window("https://ok.example/", 1, 3)
	w.Region = "-eu"
	rej, err = s.WriteWindows(ctx(t), []*codecs.Window{w})
	if err != nil {
		t.Fatal(err)
	}
	checkRejected(t, "windows", rej, map[int]string{0: "check_windows_region_valid"})
}
