// Package history is the read side of sitewatch's store: what was recorded
// about each site (its latest check and failure, uptime sums per hour and
// day, five-minute windows, phase timings, failed checks, incidents), as
// the status page, the badges and the JSON API (package web) read it.
//
// The types here are what both stores return (sinks/postgres and
// sinks/sqlite implement the same read methods over the tables of
// migration 000004), so that one page code serves either store; the shared
// test body in history/historytest holds the two to the same answers.
//
// SiteID is the one definition of a site's id in the web routes.
package history
