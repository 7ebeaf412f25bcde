package dashboard

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/processors/windows/hist"
)

// Site is one configured site: the table lists every configured site, in
// the sites file's order, before its first result arrives.
type Site struct {
	URL  string
	Name string
}

// Board is the per-site state behind the table. It is safe for concurrent
// use: partition consumers Add while the drawing loop takes Snapshots.
type Board struct {
	mu     sync.Mutex
	window time.Duration
	sites  map[string]*siteState
	// order is the sites file's order, then URLs first seen in results
	// (sites added by a reload of the sites file).
	order []string
	// alerts are the newest status changes from the alerts processor,
	// newest last, at most maxAlerts; alertIDs their change_ids.
	alerts   []Alert
	alertIDs map[string]bool
}

// maxAlerts is how many status changes the table lists.
const maxAlerts = 5

// Alert is one status change from status_changes, as the table lists it.
type Alert struct {
	At          time.Time
	Name        string
	Kind        string
	Consecutive int
	// Detail is the error of a down change or the expiry of a certificate.
	Detail string
}

type siteState struct {
	name string
	// configured is set for a site of the sites file or registry, unset
	// for one known only from its results.
	configured bool
	// last is the newest result by checked_at: the two result topics are
	// consumed side by side, so results of one site may arrive out of order.
	last *codecs.Result
	// samples are the checks within one window of the newest, for the
	// uptime and p95 columns.
	samples []sample
	// lastFailure is the newest result that was down.
	lastFailure *codecs.Result
	// regions is each region's newest result: regions check every site
	// each slot (docs/CONTRACT.md, Regions), and each has its view.
	regions map[string]*codecs.Result
}

type sample struct {
	eventID string
	at      time.Time
	up      bool
	resp    *float64
}

// Change is a site going down or coming back up as one region sees it,
// by that region's newest result: two regions that disagree do not make
// a change of every check.
type Change struct {
	URL, Name string
	Region    string
	Up        bool
	At        time.Time
	// ErrorKind and ErrorMessage say why a site went down.
	ErrorKind, ErrorMessage string
}

// NewBoard returns a board listing sites, with uptime and p95 taken over
// the last window (the processor's window size).
func NewBoard(sites []Site, window time.Duration) *Board {
	if window <= 0 {
		window = 5 * time.Minute
	}
	b := &Board{window: window, sites: map[string]*siteState{}, alertIDs: map[string]bool{}}
	for _, s := range sites {
		if _, dup := b.sites[s.URL]; dup {
			continue
		}
		name := s.Name
		if name == "" {
			name = s.URL
		}
		b.sites[s.URL] = &siteState{name: name, configured: true}
		b.order = append(b.order, s.URL)
	}
	return b
}

// SetSites makes sites the configured ones, as the sites registry changes:
// a new site is listed (after the others), a renamed one takes its new
// name, and one that was configured and no longer is leaves the table
// (a site seen only in results stays: its results still arrive).
func (b *Board) SetSites(sites []Site) {
	b.mu.Lock()
	defer b.mu.Unlock()
	want := make(map[string]string, len(sites))
	for _, s := range sites {
		name := s.Name
		if name == "" {
			name = s.URL
		}
		want[s.URL] = name
	}
	b.order = slices.DeleteFunc(b.order, func(url string) bool {
		_, keep := want[url]
		if !keep && b.sites[url].configured {
			delete(b.sites, url)
			return true
		}
		return false
	})
	for _, s := range sites {
		st, ok := b.sites[s.URL]
		if !ok {
			st = &siteState{}
			b.sites[s.URL] = st
			b.order = append(b.order, s.URL)
		}
		st.name, st.configured = want[s.URL], true
	}
}

// Window is the span that uptime and p95 are computed over.
func (b *Board) Window() time.Duration { return b.window }

// Add records one result. It reports a Change when the result is the
// site's newest and its outcome differs from the previous newest one (or it
// is the site's first result and is down). A result seen before (same
// event_id, a re-delivery) changes nothing.
func (b *Board) Add(r *codecs.Result) (Change, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, ok := b.sites[r.URL]
	if !ok {
		st = &siteState{name: r.URL}
		b.sites[r.URL] = st
		b.order = append(b.order, r.URL)
	}
	// A result more than one window older than the site's newest is of no
	// use to the uptime and p95 columns.
	if !st.has(r.EventID) && (st.last == nil || r.CheckedAt.After(st.last.CheckedAt.Add(-b.window))) {
		st.samples = append(st.samples, sample{eventID: r.EventID, at: r.CheckedAt, up: r.Up(), resp: r.ResponseTimeMS})
	}
	if !r.Up() && (st.lastFailure == nil || r.CheckedAt.After(st.lastFailure.CheckedAt)) {
		st.lastFailure = r
	}
	if st.last == nil || (st.last.EventID != r.EventID && r.CheckedAt.After(st.last.CheckedAt)) {
		st.last = r
		st.prune(r.CheckedAt.Add(-b.window))
	}
	region := r.Region
	if region == "" {
		region = codecs.DefaultRegion
	}
	prev := st.regions[region]
	if prev != nil && (prev.EventID == r.EventID || !r.CheckedAt.After(prev.CheckedAt)) {
		return Change{}, false
	}
	if st.regions == nil {
		st.regions = map[string]*codecs.Result{}
	}
	st.regions[region] = r
	if (prev == nil && r.Up()) || (prev != nil && prev.Up() == r.Up()) {
		return Change{}, false
	}
	c := Change{URL: r.URL, Name: st.name, Region: region, Up: r.Up(), At: r.CheckedAt}
	if r.ErrorKind != nil {
		c.ErrorKind = *r.ErrorKind
	}
	if r.ErrorMessage != nil {
		c.ErrorMessage = *r.ErrorMessage
	}
	return c, true
}

// AddChange records a status change. It reports whether the change is new
// (a change_id not seen before: the alerts processor may send one again).
func (b *Board) AddChange(c *codecs.StatusChange) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.alertIDs[c.ChangeID] {
		return false
	}
	b.alertIDs[c.ChangeID] = true
	a := Alert{At: c.ChangedAt, Name: c.Name, Kind: c.Kind, Consecutive: c.Consecutive}
	if st, ok := b.sites[c.URL]; ok {
		a.Name = st.name
	}
	if a.Name == "" {
		a.Name = c.URL
	}
	switch {
	case c.Kind == codecs.ChangeDown:
		r := codecs.Result{ErrorKind: c.ErrorKind, ErrorMessage: c.ErrorMessage}
		a.Detail = describeError(&r)
	case c.TLSNotAfter != nil && (c.Kind == codecs.ChangeCertExpiring || c.Kind == codecs.ChangeCertOK):
		a.Detail = "certificate expires " + c.TLSNotAfter.UTC().Format(time.DateOnly)
	}
	// Changes of different sites arrive from different partitions: keep
	// them in time order.
	i, _ := slices.BinarySearchFunc(b.alerts, a.At, func(x Alert, t time.Time) int { return x.At.Compare(t) })
	b.alerts = slices.Insert(b.alerts, i, a)
	if len(b.alerts) > maxAlerts {
		b.alerts = slices.Delete(b.alerts, 0, len(b.alerts)-maxAlerts)
	}
	// The ids only need to outlast re-sends, which follow their change
	// closely.
	if len(b.alertIDs) > 100*maxAlerts {
		clear(b.alertIDs)
		b.alertIDs[c.ChangeID] = true
	}
	return true
}

func (st *siteState) has(eventID string) bool {
	return slices.ContainsFunc(st.samples, func(s sample) bool { return s.eventID == eventID })
}

// prune drops the samples at or before cut.
func (st *siteState) prune(cut time.Time) {
	st.samples = slices.DeleteFunc(st.samples, func(s sample) bool { return !s.at.After(cut) })
}

// Row is one site's line of the table.
type Row struct {
	URL, Name string
	// Checked is false until the site's first result arrives; the other
	// fields are zero until then.
	Checked    bool
	Up         bool
	StatusCode int
	// ResponseMS is the newest check's response time; nil when no response
	// arrived.
	ResponseMS *float64
	CheckedAt  time.Time
	// Checks and Failures count the checks in the window ending at the
	// snapshot's time; P95MS is over those that got a response.
	Checks, Failures int
	P95MS            *float64
	// LastFailure is when the newest failed check ran (zero: none seen),
	// LastError why: "kind: message".
	LastFailure time.Time
	LastError   string
	// Regions are each region's newest check, by region name, when more
	// than one region checked the site within one window of its newest
	// check; nil otherwise (one region: the row says it all).
	Regions []RegionState
}

// RegionState is one region's view of a site: its newest check.
type RegionState struct {
	Region    string
	Up        bool
	CheckedAt time.Time
}

// Uptime is the share of checks in the window that were up, in percent,
// and false when the window holds no check.
func (r Row) Uptime() (float64, bool) {
	if r.Checks == 0 {
		return 0, false
	}
	return 100 * float64(r.Checks-r.Failures) / float64(r.Checks), true
}

// Snapshot is the board at one moment, ready to render.
type Snapshot struct {
	At     time.Time
	Window time.Duration
	Rows   []Row
	// Alerts are the newest status changes, newest first.
	Alerts []Alert
}

// Snapshot returns every site's row at time now, in the board's order;
// uptime and p95 cover the checks in (now−window, now].
func (b *Board) Snapshot(now time.Time) Snapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := Snapshot{At: now, Window: b.window, Rows: make([]Row, 0, len(b.order))}
	for i := len(b.alerts) - 1; i >= 0; i-- {
		out.Alerts = append(out.Alerts, b.alerts[i])
	}
	cut := now.Add(-b.window)
	for _, url := range b.order {
		st := b.sites[url]
		row := Row{URL: url, Name: st.name}
		if r := st.last; r != nil {
			row.Checked, row.Up, row.StatusCode = true, r.Up(), r.StatusCode
			row.ResponseMS, row.CheckedAt = r.ResponseTimeMS, r.CheckedAt
		}
		var sk hist.Sketch
		for _, s := range st.samples {
			if !s.at.After(cut) {
				continue
			}
			row.Checks++
			if !s.up {
				row.Failures++
			}
			if s.resp != nil {
				sk.Add(*s.resp)
			}
		}
		if p, ok := sk.Quantile(0.95); ok {
			row.P95MS = &p
		}
		if f := st.lastFailure; f != nil {
			row.LastFailure = f.CheckedAt
			row.LastError = describeError(f)
		}
		if len(st.regions) > 1 {
			for name, r := range st.regions {
				// A region that stopped checking drops out.
				if r.CheckedAt.After(st.last.CheckedAt.Add(-b.window)) {
					row.Regions = append(row.Regions, RegionState{Region: name, Up: r.Up(), CheckedAt: r.CheckedAt})
				}
			}
			if len(row.Regions) < 2 {
				row.Regions = nil
			}
			slices.SortFunc(row.Regions, func(a, b RegionState) int { return strings.Compare(a.Region, b.Region) })
		}
		out.Rows = append(out.Rows, row)
	}
	return out
}

// describeError is "kind: message", or whichever of the two is there.
func describeError(r *codecs.Result) string {
	kind, msg := "", ""
	if r.ErrorKind != nil {
		kind = *r.ErrorKind
	}
	if r.ErrorMessage != nil {
		msg = *r.ErrorMessage
	}
	switch {
	case kind == "" || strings.HasPrefix(msg, kind):
		// Messages often start with their kind already ("connect: …").
		return msg
	case msg == "":
		return kind
	}
	return kind + ": " + msg
}
