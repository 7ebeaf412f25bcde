package history

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// SiteID returns the id of the site checked at url, as it appears in the
// web routes (/sites/{id}, /badge/{id}/…, /api/v1/sites/{id}). It is
// stable (a function of the URL alone, as written in the sites file) and
// readable: the URL without its scheme, lower-cased, every run of
// characters other than a-z and 0-9 turned into one '-', cut to 48
// characters, then '-' and the first 8 hex digits of the URL's SHA-256,
// which keeps URLs that differ only in scheme, case or punctuation apart.
// For example https://example.com/health → example-com-health-<8 hex>.
func SiteID(url string) string {
	rest := url
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(rest) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			if b.Len() >= 48 {
				break
			}
			continue
		}
		dash = true
	}
	sum := sha256.Sum256([]byte(url))
	slug := strings.Trim(b.String(), "-")
	if slug == "" {
		return hex.EncodeToString(sum[:4])
	}
	return slug + "-" + hex.EncodeToString(sum[:4])
}

// Latest is a URL's latest check and latest failure (table site_status).
type Latest struct {
	URL string
	// CheckedAt is zero when the URL has no check stored.
	CheckedAt    time.Time
	Outcome      string // "up" or "down"; empty without a check
	StatusCode   int
	ErrorKind    string
	ErrorMessage string
	// Failure is the newest check that was down; nil when none is stored.
	Failure *Failure
	// IncidentSince is the start of the URL's open incident (view
	// incidents_open), nil when none is open: a site with an open
	// incident is down, whatever its latest check says.
	IncidentSince *time.Time
	// TLSNotAfter is the certificate expiry (tls_not_after) of the latest
	// check: nil for plain HTTP, a check that got no certificate, or rows
	// older than the column. The stores fill it only when Latest is asked
	// for given URLs (a site's page or API), not for every site: the
	// overview does not show it, and it costs a lookup in check_results.
	TLSNotAfter *time.Time
}

// Failure is one failed check.
type Failure struct {
	CheckedAt      time.Time
	StatusCode     int
	ErrorKind      string
	ErrorMessage   string
	ResponseTimeMS *float64
}

// Counts are checks and failures over some period, with what the
// response-weighted mean of the windows' p95 needs.
type Counts struct {
	Checks, Failures int64
	Responses        int64
	// P95SumMS is the sum of each window's p95 times its responses.
	P95SumMS float64
}

// Add returns c plus o.
func (c Counts) Add(o Counts) Counts {
	return Counts{c.Checks + o.Checks, c.Failures + o.Failures, c.Responses + o.Responses, c.P95SumMS + o.P95SumMS}
}

// Uptime is the percentage of checks that were up; ok is false when there
// were no checks (no data is not downtime).
func (c Counts) Uptime() (pct float64, ok bool) {
	if c.Checks <= 0 {
		return 0, false
	}
	return 100 * float64(c.Checks-c.Failures) / float64(c.Checks), true
}

// P95 is the response-weighted mean of the five-minute windows' p95 in
// milliseconds; ok is false when no check got a response. Percentiles do
// not merge, so this is an estimate of the period's p95 that the windows
// can give cheaply; exact percentiles come from check_results.
func (c Counts) P95() (ms float64, ok bool) {
	if c.Responses <= 0 {
		return 0, false
	}
	return c.P95SumMS / float64(c.Responses), true
}

// Stats are a URL's sums over the periods the overview shows. Last24h is
// the UTC hours from the one holding now−24h up to now; Last7d and Last30d
// the UTC days ending today, today included.
type Stats struct {
	Last24h, Last7d, Last30d Counts
}

// Day is one URL's sums over one UTC day.
type Day struct {
	URL string
	Day time.Time
	Counts
}

// Window is one five-minute window of a URL over every region that
// checked it (view check_windows_all_regions of table check_windows), or
// one region's (RegionReader).
type Window struct {
	// Region is the region whose view the window is (RegionWindows);
	// empty for a window over every region (Windows).
	Region                      string
	Start, End                  time.Time
	Checks, Failures, Responses int64
	// Response times in ms over the checks with a response; nil when none.
	// The mean and maximum are over every region's checks; the
	// percentiles are the worst region's (the highest p95), since
	// percentiles of several regions cannot be merged.
	AvgMS, P50MS, P95MS, P99MS, MaxMS *float64
}

// Phases are the mean phase timings, in milliseconds, of a URL's checks
// in one five-minute bucket of check_results; nil for a phase that none of
// them went through (a plain-HTTP site has no TLS).
type Phases struct {
	Start                                       time.Time
	Checks                                      int64
	DNSMS, ConnectMS, TLSMS, TTFBMS, TransferMS *float64
}

// Incident is one down period of a URL: a row of the incidents table,
// opened by a down status change and closed by the up change after it.
type Incident struct {
	URL       string
	StartedAt time.Time
	// EndedAt is nil while the incident is open.
	EndedAt      *time.Time
	CauseKind    string
	CauseMessage string
	FailedChecks int64
}

// IncidentQuery selects incidents (table incidents): of one URL (or every
// URL when URL is empty), overlapping [From, To) (started before To, open
// or ended after From), newest first, at most Limit.
type IncidentQuery struct {
	URL      string
	From, To time.Time
	OpenOnly bool
	Limit    int
}

// StatsBounds returns where Stats' periods start for a given now: the UTC
// hour holding now−24h, and the UTC days 6 and 29 days before today.
func StatsBounds(now time.Time) (hourFrom, dayFrom7, dayFrom30 time.Time) {
	now = now.UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	return now.Add(-24 * time.Hour).Truncate(time.Hour), today.AddDate(0, 0, -6), today.AddDate(0, 0, -29)
}

// SetStats stores a row of the stores' Stats query in m: the last 24 h
// (days false, c), or the last 7 days (c) and 30 days (c30).
func SetStats(m map[string]Stats, url string, days bool, c, c30 Counts) {
	st := m[url]
	if days {
		st.Last7d, st.Last30d = c, c30
	} else {
		st.Last24h = c
	}
	m[url] = st
}

// RegionCheck is one region's latest check of a URL (RegionLatest).
type RegionCheck struct {
	Region       string
	CheckedAt    time.Time
	Outcome      string // "up" or "down"
	StatusCode   int
	ErrorKind    string
	ErrorMessage string
}

// RegionReader reads each region's view of a site. Both stores implement
// it; each method is one query over one URL.
type RegionReader interface {
	// RegionWindows are the site's windows per region (table
	// check_windows), ordered by start, then region.
	RegionWindows(ctx context.Context, url string, from, to time.Time) ([]Window, error)
	// RegionLatest is each region's newest check of the site among those
	// checked at or after since (check_results), ordered by region. A
	// region with no check since then is left out.
	RegionLatest(ctx context.Context, url string, since time.Time) ([]RegionCheck, error)
}
