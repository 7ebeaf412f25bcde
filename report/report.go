package report

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"time"
)

const (
	// DefaultInterval is a site's interval when the sites file does not
	// give it and its checks are too few to infer it (the sites file's own
	// default).
	DefaultInterval = time.Minute
	// Lookback is how long before the range a check is still fetched so
	// that it can hold into the range; a configured interval longer than
	// this extends it.
	Lookback = time.Hour
)

// Where a site's interval came from (SiteReport.IntervalSource).
const (
	IntervalFromSites    = "sites_file"
	IntervalInferred     = "inferred"
	IntervalFromDefault  = "default"
	IncidentsFromTable   = "incidents"
	IncidentsFromDownRun = "down_periods"
)

// Check is one stored check, as much of it as a report needs.
type Check struct {
	URL string
	// Region is the region that made the check; every region checks
	// every slot, so a slot has a check per region.
	Region      string
	ScheduledAt time.Time
	CheckedAt   time.Time
	Up          bool
	// ResponseTimeMS is meaningful when HasResponse.
	ResponseTimeMS float64
	HasResponse    bool
	// ErrorKind is empty for an up check.
	ErrorKind string
}

// Source is the store as a report reads it. Implemented by
// *postgres.Store and *sqlite.Store.
type Source interface {
	// ScanChecks calls fn with every check whose scheduled_at is in
	// [from, to), ordered by url, scheduled_at, region, checked_at, in one query
	// (check_results is partitioned by scheduled_at: the range prunes its
	// daily partitions). An error from fn stops the scan and is returned.
	ScanChecks(ctx context.Context, from, to time.Time, fn func(Check) error) error
}

// IncidentCounter is implemented by stores that may have an incidents
// table (migration 000003, written by the alerts part).
type IncidentCounter interface {
	// CountIncidents returns, per URL, the incidents overlapping [from,
	// to) (started before to, and open or ended after from); ok is false
	// when the store has no incidents table.
	CountIncidents(ctx context.Context, from, to time.Time) (counts map[string]int64, ok bool, err error)
}

// Rows is what pgx.Rows and *sql.Rows have in common, for ScanCounts.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// ScanCounts reads (url, count) rows into a map: the stores'
// CountIncidents share it.
func ScanCounts(rows Rows) (map[string]int64, error) {
	counts := map[string]int64{}
	for rows.Next() {
		var url string
		var n int64
		if err := rows.Scan(&url, &n); err != nil {
			return nil, err
		}
		counts[url] = n
	}
	return counts, rows.Err()
}

// Site is what the sites file says about a URL.
type Site struct {
	URL      string
	Name     string
	Interval time.Duration
}

// Options select a report.
type Options struct {
	From, To time.Time
	// SLO, when set, adds the error budget to every site.
	SLO *SLO
	// Sites are listed even without checks, with their names and
	// intervals; sites seen in the store but not here are listed under
	// their URL with an inferred interval.
	Sites []Site
}

// Report is the result of Build; its JSON form is the API's and
// `sitewatch report -format json`'s.
type Report struct {
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Range Seconds   `json:"range_seconds"`
	// SLOPercent is null without an SLO.
	SLOPercent *float64 `json:"slo_percent"`
	// IncidentsSource says what Incidents count: "incidents" (the
	// incidents table) or "down_periods" (derived from the checks).
	IncidentsSource string       `json:"incidents_source"`
	Sites           []SiteReport `json:"sites"`
}

// SiteReport holds one site's figures. Percentages and latencies are null
// when there is nothing to compute them from.
type SiteReport struct {
	URL            string   `json:"url"`
	Name           string   `json:"name"`
	Interval       Duration `json:"interval"`
	IntervalSource string   `json:"interval_source"`

	Checks              int64    `json:"checks"`
	Failures            int64    `json:"failures"`
	UptimeChecksPercent *float64 `json:"uptime_checks_percent"`
	UptimeTimePercent   *float64 `json:"uptime_time_percent"`
	Up                  Seconds  `json:"up_seconds"`
	Down                Seconds  `json:"down_seconds"`
	Unknown             Seconds  `json:"unknown_seconds"`

	Responses int64    `json:"responses"`
	P50MS     *float64 `json:"p50_ms"`
	P95MS     *float64 `json:"p95_ms"`
	P99MS     *float64 `json:"p99_ms"`

	// FailuresByKind counts the range's down checks by error_kind.
	FailuresByKind map[string]int64 `json:"failures_by_kind"`

	Incidents   int64   `json:"incidents"`
	DownPeriods int64   `json:"down_periods"`
	LongestDown Seconds `json:"longest_down_seconds"`

	// Budget is null without an SLO.
	Budget *Budget `json:"error_budget"`
}

// Budget is a site's error budget for the report's SLO.
type Budget struct {
	Allowed Seconds `json:"allowed_seconds"`
	// Left is Allowed minus the downtime; negative when overspent.
	Left Seconds `json:"left_seconds"`
	// LeftPercent is 100 × Left / Allowed; null when Allowed is zero.
	LeftPercent *float64 `json:"left_percent"`
}

// Build computes the report for o from src.
func Build(ctx context.Context, src Source, o Options) (*Report, error) {
	if !o.From.Before(o.To) {
		return nil, &FieldError{Field: "to", Msg: fmt.Sprintf("%s is not after from %s", fmtTime(o.To), fmtTime(o.From))}
	}
	from, to := o.From.UTC(), o.To.UTC()
	configured := make(map[string]Site, len(o.Sites))
	lookback := Lookback
	for _, s := range o.Sites {
		configured[s.URL] = s
		lookback = max(lookback, s.Interval)
	}

	rep := &Report{From: from, To: to, Range: Seconds(to.Sub(from)), Sites: []SiteReport{}}
	if o.SLO != nil {
		p := o.SLO.Percent()
		rep.SLOPercent = &p
	}
	seen := map[string]bool{}
	var cur []Check
	flush := func() {
		if len(cur) == 0 {
			return
		}
		url := cur[0].URL
		seen[url] = true
		rep.Sites = append(rep.Sites, computeSite(cur, configured[url], from, to, o.SLO))
		cur = cur[:0]
	}
	err := src.ScanChecks(ctx, from.Add(-lookback), to, func(c Check) error {
		if len(cur) > 0 && cur[0].URL != c.URL {
			if c.URL < cur[0].URL {
				return fmt.Errorf("checks out of order: %q after %q", c.URL, cur[0].URL)
			}
			flush()
		}
		cur = append(cur, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read checks: %w", err)
	}
	flush()
	for _, s := range o.Sites {
		if !seen[s.URL] {
			seen[s.URL] = true
			rep.Sites = append(rep.Sites, computeSite(nil, s, from, to, o.SLO))
		}
	}
	slices.SortFunc(rep.Sites, func(a, b SiteReport) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.URL, b.URL))
	})
	if err := incidentCounts(ctx, src, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// incidentCounts is the one place that decides what a site's incidents
// are: the incidents table's rows when the store has that table, else the
// down periods derived from the checks.
func incidentCounts(ctx context.Context, src Source, rep *Report) error {
	var counts map[string]int64
	ok := false
	if ic, is := src.(IncidentCounter); is {
		var err error
		if counts, ok, err = ic.CountIncidents(ctx, rep.From, rep.To); err != nil {
			return fmt.Errorf("read incidents: %w", err)
		}
	}
	if !ok {
		rep.IncidentsSource = IncidentsFromDownRun
		for i := range rep.Sites {
			rep.Sites[i].Incidents = rep.Sites[i].DownPeriods
		}
		return nil
	}
	rep.IncidentsSource = IncidentsFromTable
	for i := range rep.Sites {
		rep.Sites[i].Incidents = counts[rep.Sites[i].URL]
	}
	return nil
}

// computeSite computes one site's figures from its checks (ordered by
// scheduled_at, then checked_at; possibly none).
func computeSite(cs []Check, site Site, from, to time.Time, slo *SLO) SiteReport {
	url := site.URL
	if url == "" && len(cs) > 0 {
		url = cs[0].URL
	}
	sr := SiteReport{URL: url, Name: site.Name, FailuresByKind: map[string]int64{}}
	if sr.Name == "" {
		sr.Name = url
	}
	// A slot stored twice by one region (a check repeated after a crash,
	// before one row per slot was enforced) counts once: the earliest
	// checked_at. Each region's check of a slot counts (the checks are
	// ordered by slot, region, checked_at).
	cs = slices.CompactFunc(cs, func(a, b Check) bool { return a.ScheduledAt.Equal(b.ScheduledAt) && a.Region == b.Region })
	var latencies []float64
	for _, c := range cs {
		if !c.ScheduledAt.Before(from) {
			sr.Checks++
			if !c.Up {
				sr.Failures++
				sr.FailuresByKind[c.ErrorKind]++
			}
			if c.HasResponse {
				latencies = append(latencies, c.ResponseTimeMS)
			}
		}
	}
	// The time figures walk one timeline of slots: a slot checked by
	// several regions is down when any of them saw it down (the worst
	// region's view, as check_windows_all_regions takes the worst
	// region's percentiles).
	slots := cs[:0:0]
	for _, c := range cs {
		if n := len(slots); n > 0 && slots[n-1].ScheduledAt.Equal(c.ScheduledAt) {
			slots[n-1].Up = slots[n-1].Up && c.Up
			continue
		}
		slots = append(slots, c)
	}
	cs = slots

	interval, source := site.Interval, IntervalFromSites
	if interval <= 0 {
		interval, source = inferInterval(cs)
	}
	sr.Interval, sr.IntervalSource = Duration(interval), source

	var up, down, longest, runStart, runEnd time.Duration
	inRun := false
	endRun := func() {
		if inRun {
			sr.DownPeriods++
			longest = max(longest, runEnd-runStart)
			inRun = false
		}
	}
	for i, c := range cs {
		end := c.ScheduledAt.Add(interval)
		if i+1 < len(cs) && cs[i+1].ScheduledAt.Before(end) {
			end = cs[i+1].ScheduledAt
		}
		// Offsets from the range start keep the run arithmetic in
		// durations.
		s, e := max(c.ScheduledAt.Sub(from), 0), min(end.Sub(from), to.Sub(from))
		if e <= s {
			continue
		}
		if c.Up {
			up += e - s
			endRun()
			continue
		}
		down += e - s
		if inRun && s == runEnd {
			runEnd = e
			continue
		}
		endRun()
		inRun, runStart, runEnd = true, s, e
	}
	endRun()

	sr.Up, sr.Down, sr.LongestDown = Seconds(up), Seconds(down), Seconds(longest)
	sr.Unknown = Seconds(to.Sub(from) - up - down)
	if sr.Checks > 0 {
		sr.UptimeChecksPercent = percent(sr.Checks-sr.Failures, sr.Checks)
	}
	if up+down > 0 {
		sr.UptimeTimePercent = percent(int64(up), int64(up+down))
	}
	if len(latencies) > 0 {
		slices.Sort(latencies)
		sr.Responses = int64(len(latencies))
		p50, p95, p99 := PercentileCont(latencies, 0.50), PercentileCont(latencies, 0.95), PercentileCont(latencies, 0.99)
		sr.P50MS, sr.P95MS, sr.P99MS = &p50, &p95, &p99
	}
	if slo != nil {
		allowed := slo.Allowed(up + down)
		b := &Budget{Allowed: Seconds(allowed), Left: Seconds(allowed - down)}
		if allowed > 0 {
			b.LeftPercent = percent(int64(allowed-down), int64(allowed))
		}
		sr.Budget = b
	}
	return sr
}

func percent(part, whole int64) *float64 {
	p := 100 * float64(part) / float64(whole)
	return &p
}

// inferInterval is the lower median of the spacings of consecutive
// scheduled_at values: gaps (the monitor offline) and the odd extra slot
// do not move it.
func inferInterval(cs []Check) (time.Duration, string) {
	if len(cs) < 2 {
		return DefaultInterval, IntervalFromDefault
	}
	gaps := make([]time.Duration, 0, len(cs)-1)
	for i := 1; i < len(cs); i++ {
		gaps = append(gaps, cs[i].ScheduledAt.Sub(cs[i-1].ScheduledAt))
	}
	slices.Sort(gaps)
	return gaps[(len(gaps)-1)/2], IntervalInferred
}

// PercentileCont is PostgreSQL's percentile_cont(p) over sorted (ascending,
// non-empty), with the same operations in the same order as its
// float8 implementation (percentile_cont_final_common and float8_lerp), so
// that the result is equal to the bit. The explicit float64 conversions
// stop the compiler fusing a multiply and an add, which would round
// differently.
func PercentileCont(sorted []float64, p float64) float64 {
	pos := float64(p * float64(len(sorted)-1))
	lo, hi := math.Floor(pos), math.Ceil(pos)
	first := sorted[int(lo)]
	if hi == lo {
		return first
	}
	second := sorted[int(hi)]
	return first + float64((second-first)*(pos-lo))
}

// SLO is a service level objective in millionths of a percent, exact for
// any value written with up to six decimals.
type SLO struct{ micro int64 }

const sloScale = 100_000_000 // 100 % in millionths of a percent

// Percent is the SLO as a percentage, e.g. 99.9.
func (s SLO) Percent() float64 { return float64(s.micro) / 1e6 }

// Allowed is the downtime the SLO allows over known (up + down) time,
// rounded down to the nanosecond, computed exactly.
func (s SLO) Allowed(known time.Duration) time.Duration {
	if known <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(known), uint64(sloScale-s.micro))
	q, _ := bits.Div64(hi, lo, sloScale)
	return time.Duration(q)
}
