// Package web serves sitewatch's status page, badges and JSON API from the
// store, on the processor's and the all-in-one's -http-addr:
//
//	GET /                              overview: every site, down first
//	GET /sites/{id}                    one site: charts, incidents, failures
//	GET /badge/{id}/status.svg         shields-style badges
//	GET /badge/{id}/uptime.svg?period=24h|7d|30d|90d
//	GET /badge/{id}/latency.svg
//	GET /api/v1/sites                  the same data as JSON (docs/openapi.yaml)
//	GET /api/v1/sites/{id}
//	GET /api/v1/sites/{id}/windows?from=&to=
//	GET /api/v1/incidents?open=true
//
// {id} is history.SiteID of the site's URL. Pages are html/template (every
// value from a site or an error message is escaped) with inline SVG charts
// drawn on the server: no CDN, no build step, readable without JavaScript;
// a small inline script only refreshes the overview every 30 s and filters
// it as one types.
//
// Everything is read through Reader, which sinks/postgres and sinks/sqlite
// implement with the same methods. Every page costs a bounded number of
// queries whatever the number of sites: the overview reads site_status for
// all sites (state, ordering, summary line) and the rollups only for the
// page of sites it shows. A site checked from several regions shows each
// region's view side by side on its page and API answer (regions.go), for
// two queries more over that one site.
package web
