package storetest

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/sinks"
)

// storedTime reads a timestamp column as either store returns it: a
// time.Time from PostgreSQL, RFC 3339 text from SQLite; nil for NULL.
func storedTime(t *testing.T, v any) *time.Time {
	t.Helper()
	switch x := v.(type) {
	case nil:
		return nil
	case time.Time:
		u := x.UTC()
		return &u
	case string:
		at, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			t.Fatalf("stored time %q: %v", x, err)
		}
		return &at
	case []byte:
		return storedTime(t, string(x))
	}
	t.Fatalf("stored time of type %T", v)
	return nil
}

// tlsNotAfter: a result's tls_not_after is stored; one without stores NULL.
func tlsNotAfter(t *testing.T, s sinks.Store, db *sql.DB) {
	with := result("tls-1", "https://tls.example/", t0, t0, "c1")
	notAfter := t0.Add(72 * time.Hour)
	with.TLSNotAfter = &notAfter
	without := result("tls-2", "https://tls.example/", t0.Add(time.Minute), t0.Add(time.Minute), "c1")
	writeResults(t, s, with, without)
	for id, want := range map[string]*time.Time{"tls-1": &notAfter, "tls-2": nil} {
		var v any
		if err := db.QueryRow("SELECT tls_not_after FROM check_results WHERE event_id = '" + id + "'").Scan(&v); err != nil {
			t.Fatal(err)
		}
		got := storedTime(t, v)
		if (got == nil) != (want == nil) || (got != nil && !got.Equal(*want)) {
			t.Errorf("%s: tls_not_after = %v, want %v", id, got, want)
		}
	}
}

// incident is one row of incidents as read back.
type incident struct {
	url          string
	startedAt    time.Time
	endedAt      *time.Time
	causeKind    *string
	failedChecks int64
	downID       string
	upID         *string
}

func readIncidents(t *testing.T, db *sql.DB) []incident {
	t.Helper()
	rs, err := db.Query(`SELECT url, started_at, ended_at, cause_kind, failed_checks, down_change_id, up_change_id
FROM incidents ORDER BY url, started_at`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []incident
	for rs.Next() {
		var i incident
		var started, ended any
		if err := rs.Scan(&i.url, &started, &ended, &i.causeKind, &i.failedChecks, &i.downID, &i.upID); err != nil {
			t.Fatal(err)
		}
		i.startedAt = *storedTime(t, started)
		i.endedAt = storedTime(t, ended)
		out = append(out, i)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func change(id, kind string, since time.Time, consecutive int) *codecs.StatusChange {
	c := &codecs.StatusChange{
		V: codecs.Version, ChangeID: id, URL: "https://shop.example/", Name: "shop", Kind: kind,
		Since: since, ChangedAt: since.Add(2 * time.Minute), Consecutive: consecutive, EventID: "e-" + id,
	}
	switch kind {
	case codecs.ChangeDown:
		c.State, c.PreviousState = codecs.StateDown, codecs.StateUp
		c.ErrorKind, c.ErrorMessage, c.StatusCode = ptr(codecs.ErrStatus), ptr("status 503, expected 2xx or 3xx"), 503
	case codecs.ChangeUp:
		c.State, c.PreviousState, c.StatusCode = codecs.StateUp, codecs.StateDown, 200
	default:
		c.State, c.PreviousState = codecs.StateUp, codecs.StateUp
	}
	return c
}

// incidents: a down change opens an incident, the up change closes it with
// the failed checks stored for the period, once however often either is
// written; an old up does not close a later incident, a second down does
// not open a second one, and a change the store refuses is rejected alone.
func incidents(t *testing.T, s sinks.Store, db *sql.DB) {
	is, ok := s.(sinks.IncidentStore)
	if !ok {
		t.Fatalf("%T does not keep incidents", s)
	}
	write := func(cs ...*codecs.StatusChange) []sinks.Rejected {
		t.Helper()
		rej, err := is.WriteChanges(ctx(t), cs)
		if err != nil {
			t.Fatalf("WriteChanges: %v", err)
		}
		return rej
	}
	open := func() int64 {
		t.Helper()
		n, err := is.OpenIncidents(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Five failed checks (the down change crossed at the third), then two
	// good ones.
	var rs []*codecs.Result
	for i := range 7 {
		at := t0.Add(time.Duration(i) * time.Minute)
		r := result(fmt.Sprintf("d%d", i), "https://shop.example/", at, at, "c1")
		if i < 5 {
			r.Outcome, r.StatusCode = codecs.OutcomeDown, 503
			r.ErrorKind, r.ErrorMessage = ptr(codecs.ErrStatus), ptr("status 503, expected 2xx or 3xx")
			r.ResponseTimeMS = nil
		}
		rs = append(rs, r)
	}
	writeResults(t, s, rs...)

	down := change("c-down-1", codecs.ChangeDown, t0, 3)
	cert := change("c-cert-1", codecs.ChangeCertExpiring, t0, 1)
	if rej := write(down, cert, down); len(rej) > 0 {
		t.Fatalf("rejected: %v", rej)
	}
	got := readIncidents(t, db)
	if len(got) != 1 || got[0].endedAt != nil || got[0].downID != "c-down-1" || !got[0].startedAt.Equal(t0) ||
		got[0].failedChecks != 3 || got[0].causeKind == nil || *got[0].causeKind != codecs.ErrStatus {
		t.Fatalf("after the down change: %+v, want one open incident from %v, 3 failed checks, cause status", got, t0)
	}
	if n := open(); n != 1 {
		t.Errorf("open incidents = %d, want 1", n)
	}

	up := change("c-up-1", codecs.ChangeUp, t0.Add(5*time.Minute), 2)
	write(up)
	write(down, cert, up) // replayed, all of it: nothing more
	got = readIncidents(t, db)
	if len(got) != 1 || got[0].endedAt == nil || !got[0].endedAt.Equal(t0.Add(5*time.Minute)) ||
		got[0].upID == nil || *got[0].upID != "c-up-1" || got[0].failedChecks != 5 {
		t.Fatalf("after the up change and a replay: %+v, want one incident ended at %v by c-up-1 with the 5 failed checks", got, t0.Add(5*time.Minute))
	}
	if n := open(); n != 0 {
		t.Errorf("open incidents = %d, want 0", n)
	}

	down2 := change("c-down-2", codecs.ChangeDown, t0.Add(time.Hour), 3)
	stray := change("c-down-x", codecs.ChangeDown, t0.Add(time.Hour+time.Minute), 3)
	write(down2, up, stray)
	got = readIncidents(t, db)
	if len(got) != 2 || got[1].downID != "c-down-2" || got[1].endedAt != nil {
		t.Fatalf("second period: %+v, want the first closed and c-down-2 open", got)
	}
	up2 := change("c-up-2", codecs.ChangeUp, t0.Add(2*time.Hour), 2)
	bad := change("c-bad", codecs.ChangeDown, t0, 3)
	bad.URL = "ftp://shop.example/"
	checkRejected(t, "changes", write(bad, up2, nil), map[int]string{0: "incidents_url_http", 2: "nil change"})
	got = readIncidents(t, db)
	if len(got) != 2 || got[1].endedAt == nil || !got[1].endedAt.Equal(t0.Add(2*time.Hour)) || got[1].failedChecks != 3 {
		t.Fatalf("after c-up-2: %+v, want two closed incidents (the second with its 3 failed checks)", got)
	}
}
