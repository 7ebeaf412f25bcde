// Package sitesapi is the HTTP API that manages the sites registry:
//
//	GET    /api/v1/sites        every site of the registry
//	POST   /api/v1/sites        add a site (201, the stored site)
//	GET    /api/v1/sites/{id}   one site
//	PUT    /api/v1/sites/{id}   replace it (200, the stored site)
//	DELETE /api/v1/sites/{id}   remove it (204)
//
// Bodies are one site as JSON with the sites file's field names and
// duration strings, validated by the sites file's rules and messages
// (config.ParseSiteJSON): a mistake is a 400 {"error": "…", "field": "…"}.
// Writes produce to sitewatch_sites (owner "api") and answer once the
// registry has read them back. They need Authorization: Bearer <token>,
// compared in constant time: a missing or wrong token is a 401; with no
// token configured the API is read-only and writes are a 403. A site that
// a sites file owns is changed in that file, not here (409).
package sitesapi
