// Package report computes exact uptime and SLA figures per site over a
// time range [From, To) from the raw checks in check_results: the
// `sitewatch report` command and the GET /api/v1/report route print what
// Build returns, so both give the same figures for the same range.
//
// How the figures are defined:
//
//   - A check belongs to the range when its scheduled_at (the slot it
//     measures) is in [From, To). Checks and failures count those checks.
//     A slot stored twice counts once (the earliest checked_at).
//   - Uptime by checks is 100 × up checks / checks.
//   - Uptime by time: each check's outcome holds from its scheduled_at
//     until the next check's, but at most one interval; the held time is
//     clipped to the range. A check scheduled before From (up to Lookback
//     earlier) still holds into the range. Time that no check holds is
//     unknown: the monitor was not checking (stopped, offline, lagging),
//     so it counts neither as up nor as down. Uptime by time is
//     100 × up time / (up time + down time).
//   - A site's interval is the one the sites file gives when known;
//     otherwise it is inferred as the median spacing of consecutive
//     scheduled_at values of the site's fetched checks (robust to gaps);
//     with fewer than two checks it is DefaultInterval.
//   - Latency percentiles are PostgreSQL's percentile_cont (continuous,
//     linear interpolation between the two nearest ranks, as the
//     latency_hourly and latency_daily views compute them) over the checks
//     of the range that got a response (non-null response_time_ms),
//     computed here in Go with the same float operations, so that SQLite
//     gives the same values to the bit.
//   - Down periods are maximal stretches of time held by down checks; a
//     gap without data ends one. Downtime is their total, Longest the
//     longest (both clipped to the range).
//   - Incidents: the rows of the incidents table overlapping the range
//     when the store has one (IncidentCounter), else the down periods.
//     Which one is used is decided in one place (incidentCounts).
//   - With an SLO of S %, the allowed downtime is (100 − S) % of the known
//     time (up + down; unknown time does not spend budget), the budget left
//     is allowed − downtime (negative when overspent), and its percentage
//     is 100 × left / allowed.
//
// The stores (sinks/postgres, sinks/sqlite) implement Source with one
// query per report whatever the number of sites.
package report
