package testkit

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sitewatch/sitewatch/codecs"
)

// RandomResult makes one check result for url at the given time, with a
// random outcome covering everything the windows aggregate: up with 200
// (a quarter of those with a matching regexp) and 301, down on 404 and
// 503, regexp failures with a 200, and timeouts or connection failures
// that got no response (status 0, null response time). Response times are
// lognormal around 20 ms at microsecond resolution, with an occasional
// exact 0. checker names the checker that reported it. The draws from rng
// are deterministic, so a seeded rng gives the same results every run.
func RandomResult(rng *rand.Rand, url, id string, at time.Time, checker string) *codecs.Result {
	ms := func() *float64 {
		v := math.Round(math.Exp(3+rng.NormFloat64())*1e3) / 1e3 // lognormal around 20 ms, µs resolution
		if rng.IntN(200) == 0 {
			v = 0 // kept exactly by the histogram
		}
		return &v
	}
	str := func(s string) *string { return &s }
	r := &codecs.Result{
		EventID: id, URL: url,
		ScheduledAt: at.Truncate(time.Second), CheckedAt: at,
		Outcome: codecs.OutcomeUp, StatusCode: 200,
		ResponseTimeMS: ms(), ConnectMS: ms(), TTFBMS: ms(),
		BodyBytes: rng.Int64N(5000), Checker: checker,
	}
	switch p := rng.IntN(100); {
	case p < 62:
	case p < 70:
		r.StatusCode = 301
	case p < 77:
		r.Outcome, r.StatusCode, r.ErrorKind = codecs.OutcomeDown, 404, str(codecs.ErrStatus)
	case p < 84:
		r.Outcome, r.StatusCode, r.ErrorKind = codecs.OutcomeDown, 503, str(codecs.ErrStatus)
	case p < 92:
		no := false
		r.Outcome, r.ErrorKind, r.Regexp, r.RegexpMatched = codecs.OutcomeDown, str(codecs.ErrRegexp), str("all good"), &no
	default:
		kind := codecs.ErrTimeout
		if p%2 == 0 {
			kind = codecs.ErrConnect
		}
		r.Outcome, r.StatusCode, r.ErrorKind = codecs.OutcomeDown, 0, str(kind)
		r.ResponseTimeMS, r.TTFBMS, r.BodyBytes = nil, nil, 0
	}
	if r.ErrorKind != nil {
		r.ErrorMessage = str("failed: " + *r.ErrorKind)
	}
	if r.Outcome == codecs.OutcomeUp && rng.IntN(4) == 0 {
		yes := true
		r.Regexp, r.RegexpMatched = str("all good"), &yes
	}
	return r
}

// StoredEventCounts maps every event_id in check_results to its number of
// rows.
func StoredEventCounts(ctx context.Context, db *pgx.Conn) (map[string]int, error) {
	rows, err := db.Query(ctx, `SELECT event_id, count(*) FROM check_results GROUP BY event_id`)
	if err != nil {
		return nil, fmt.Errorf("read check_results: %w", err)
	}
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("scan check_results: %w", err)
		}
		out[id] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read check_results: %w", err)
	}
	return out, nil
}

// StoredRows counts check_results, or returns -1 while it cannot (the
// processor has not migrated the database yet).
func StoredRows(db *pgx.Conn) int {
	var n int
	if err := db.QueryRow(context.Background(), `SELECT count(*) FROM check_results`).Scan(&n); err != nil {
		return -1
	}
	return n
}

// ExactlyOnce compares stored (from StoredEventCounts) with the events
// that must be in check_results: it returns "" when each wanted event is
// there exactly once and nothing else is, else what differs.
func ExactlyOnce(stored map[string]int, want map[string]bool) string {
	var missing, doubled, unexpected []string
	for id := range want {
		switch stored[id] {
		case 1:
		case 0:
			missing = append(missing, id)
		default:
			doubled = append(doubled, id)
		}
	}
	for id := range stored {
		if !want[id] {
			unexpected = append(unexpected, id)
		}
	}
	if len(missing)+len(doubled)+len(unexpected) == 0 {
		return ""
	}
	return fmt.Sprintf("check_results has %d distinct events, want %d: missing %d %v, doubled %d %v, unexpected %d %v",
		len(stored), len(want), len(missing), head(missing), len(doubled), head(doubled), len(unexpected), head(unexpected))
}

// EventIDs is the set of the results' event IDs, as ExactlyOnce wants it.
func EventIDs(rs []*codecs.Result) map[string]bool {
	out := make(map[string]bool, len(rs))
	for _, r := range rs {
		out[r.EventID] = true
	}
	return out
}

// head is the first five of s, sorted, to keep failure messages short.
func head(s []string) []string {
	slices.Sort(s)
	if len(s) > 5 {
		return append(s[:5:5], "…")
	}
	return s
}
