package web

import (
	"context"
	"time"

	"github.com/sitewatch/sitewatch/history"
)

// Reader is what the pages read from the store. Implemented by
// *postgres.Store and *sqlite.Store; a nil urls means every URL. Each
// method is one query.
type Reader interface {
	Latest(ctx context.Context, urls []string) ([]history.Latest, error)
	Stats(ctx context.Context, urls []string, now time.Time) (map[string]history.Stats, error)
	Daily(ctx context.Context, urls []string, from, to time.Time) ([]history.Day, error)
	Windows(ctx context.Context, url string, from, to time.Time) ([]history.Window, error)
	Phases(ctx context.Context, url string, from, to time.Time) ([]history.Phases, error)
	Failures(ctx context.Context, url string, limit int) ([]history.Failure, error)
	// Incidents are the rows of the incidents table (migration 000003),
	// which the processor's sink-incidents keeps from the alerts part's
	// status changes.
	Incidents(ctx context.Context, q history.IncidentQuery) ([]history.Incident, error)
	// Each region's view of a site, for its page and API.
	history.RegionReader
}
