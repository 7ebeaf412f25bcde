// Package alerts is the goka group "alerts": it reads the check results on
// status_request_succeeded and status_request_failed, keeps each URL's
// availability and certificate state in its group table, and emits a
// codecs.StatusChange to status_changes (key: URL) when a site crosses a
// threshold. The incidents sink and the notifications read that topic.
//
// # State changes
//
// A URL's state is unknown until its first checks set it. Failures
// consecutive down checks (Config.Failures, -alert-failures, default 3)
// make an up or unknown site down: a "down" change, with since the
// checked_at of the run's first failed check and the error of the check
// that crossed the threshold. Successes consecutive up checks
// (-alert-successes, default 2) make a down site up: an "up" change. A site
// whose first checks are good becomes up silently. A site's own thresholds
// come from the sites file (alert: {failures: N, successes: M}) through
// Config.Rules. A flapping site that fails fewer times in a row than the
// threshold never alerts.
//
// Every HTTPS check carries tls_not_after, the earliest expiry of the
// presented chain. When fewer than CertDays (-alert-cert-days, default 14)
// remain, "cert_expiring" is emitted once; "cert_ok" when a certificate
// with more time left is seen after it (the certificate was renewed).
//
// # Regions
//
// Each region that checks a URL (codecs.Result.Region) has its own view,
// moved by the thresholds above over its own checks, and its own
// checked_at order. The site's state follows a quorum of the regions that
// checked it recently (their newest check at most 1.5 of the site's
// intervals, Rule.Interval, before the URL's newest): down when at least
// Config.Quorum (-alert-quorum; 0, the default, is a majority of them) of
// their views are down; up when fewer than the quorum are down and at least
// the quorum are up. A change's Regions lists the agreeing regions when the
// URL is checked from several. With one region its view is the site's
// state: exactly the behaviour before regions.
//
// # Once per change
//
// A URL's events are one partition's, and a partition is one group
// member's: two or ten processors emit each change once. Events are applied
// in checked_at order per URL. goka interleaves the two input topics by
// message, not by event time (catching up, it may read an hour of the
// sparse failed topic before the matching successes), so an event waits in
// the URL's state until the other topic has been processed past it or is
// known, from the broker's high-water marks, to have nothing older (see
// order.go); live, that is one to one and a half seconds, and up to five
// when the other topic has gone silent meanwhile (the last failing site of
// a partition recovers: its up waits quietFor). Catching up on a backlog
// while the other topic is quiet, only the first quietFor waits: an event
// that had landed before the other topic's quiet time began goes at once.
// An event with nothing held before it and nothing to wait for is applied
// without being stored among the held ones. An event not newer
// than the newest applied of its region is then not applied: either it was applied
// before (its event_id is among the last ones applied: a re-delivery) or
// it is late; state never moves twice or backwards.
//
// Known limit: a burst that lands on both topics at once while the
// group's partitions are still starting (processors joining, a backlog
// read from the start) can pass the hold-back out of order under heavy
// load, when one topic's claim starts seconds after the other's: a late
// check is then not applied, and a site may go down from unknown. Ordering
// by each site's slots (scheduled_at and its interval, now known from the
// registry) instead of waiting would remove it.
//
// A change's change_id is derived from the URL, the kind and the event_id
// of the check that crossed the threshold, so the same change derived again
// (a replay after a crash, onto a table that missed the last writes) has
// the same id, and receivers deduplicate on it. goka writes the table and
// status_changes independently: when a crash loses the emission but not
// the table write, the input offset is not committed (offsets are committed
// in order, kafkarun.InOrderCommits), the event is read again, found
// applied, and the changes it made are sent again with their ids. Delivery
// to status_changes is thus at least once, with stable ids.
//
// A message that cannot be decoded, or whose key is not its url, goes to
// the dead-letter topic and processing goes on. Result producers must
// partition with goka's hasher (see processors/windows), as for windows.
package alerts
