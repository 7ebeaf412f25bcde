package alerts

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
)

// Bounds of what a URL's state remembers.
const (
	// recentIDs is how many applied event_ids are kept to tell a
	// re-delivered event from a late one (both are older than the newest
	// applied event, which is what keeps the order).
	recentIDs = 16
	// sentChanges is how many emitted changes are kept to be sent again
	// when the event that made them is delivered again.
	sentChanges = 4
)

// Certificate states of a URL.
const (
	certUnknown  = ""
	certOK       = "ok"
	certExpiring = "expiring"
)

// state is one URL's value in the group table (see statecodec.go for its
// stored form).
type state struct {
	// URL is the table key; set by the callback, stored so that held
	// events and sent changes need not repeat it.
	URL string
	// State is unknown, up or down.
	State string
	// The current run of the region of the last event applied:
	// consecutive checks with the same outcome, the first of which ran at
	// RunSince. With one region, the site's run.
	RunUp    bool
	RunCount int
	RunSince time.Time
	// Newest is the checked_at of the newest event applied, over every
	// region: the time the regions' recency is measured from.
	Newest time.Time
	// Runs are each region's run, in the order the regions were first
	// seen: a region's events are applied in checked_at order, and one
	// older than its region's newest is not applied.
	Runs []regionRun
	// Recent are the last event_ids applied, oldest first.
	Recent []string
	// Cert is the certificate state; CertNotAfter the expiry it is about.
	Cert         string
	CertNotAfter time.Time
	// sent are the last changes emitted, oldest first, in their stored
	// form: they are read only when the event that made them comes again.
	sent itemList
	// held are the events held back until the other input topic has
	// caught up with them (see order.go), in checked_at order, in their
	// stored form: most callbacks only look at the oldest.
	held heldEvents
}

// regionRun is one region's view of the site: its state as the
// thresholds make it from the region's checks alone (what the site's
// state was before regions), and its run of consecutive checks with the
// same outcome.
type regionRun struct {
	Region string
	// View is unknown, up or down.
	View     string
	RunUp    bool
	RunCount int
	RunSince time.Time
	// Newest is the checked_at of the region's newest event applied.
	Newest time.Time
}

// MaxRegions bounds the regions a URL's state keeps: beyond it the run
// of the region that checked least recently is dropped (regions are
// configured names, a handful; this only bounds a misconfigured producer).
const MaxRegions = 32

// run returns region's run, adding an empty one for a region not seen
// before.
func (st *state) run(region string) *regionRun {
	for i := range st.Runs {
		if st.Runs[i].Region == region {
			return &st.Runs[i]
		}
	}
	if len(st.Runs) >= MaxRegions {
		oldest := 0
		for i := range st.Runs {
			if st.Runs[i].Newest.Before(st.Runs[oldest].Newest) {
				oldest = i
			}
		}
		st.Runs = slices.Delete(st.Runs, oldest, oldest+1)
	}
	st.Runs = append(st.Runs, regionRun{Region: region})
	return &st.Runs[len(st.Runs)-1]
}

// regionNewest returns the checked_at of region's newest event applied
// (zero when none).
func (st *state) regionNewest(region string) time.Time {
	for i := range st.Runs {
		if st.Runs[i].Region == region {
			return st.Runs[i].Newest
		}
	}
	return time.Time{}
}

// pending is one held-back event.
type pending struct {
	Result *codecs.Result
	Topic  string
	// Offset is the event's offset in Topic (-1: unknown, held by a
	// version that did not keep it).
	Offset int64
	// HeldAt is the wall time it was held back.
	HeldAt time.Time
}

// holding reports how many events st holds back.
func (st *state) holding() int { return st.held.len() }

// hold adds an event to the held ones in checked_at order, unless it is
// there already (a re-delivery while it waits).
func (st *state) hold(e *pending) {
	if st.held.has(e.Result.EventID) {
		return
	}
	st.held.add(e, appendHeld(nil, e))
}

// oldestHeld returns the oldest held event.
func (st *state) oldestHeld() *pending { return st.held.first(st.URL) }

// remember keeps c among the last changes sent.
func (st *state) remember(c *codecs.StatusChange) {
	st.sent.add(appendChange(nil, c))
	for st.sent.n > sentChanges {
		st.sent.dropFirst()
	}
}

// sentBy returns the remembered changes that event eventID made.
func (st *state) sentBy(eventID string) []*codecs.StatusChange {
	var out []*codecs.StatusChange
	st.sent.each(func(item []byte) bool {
		if string(changeEventID(item)) == eventID {
			c, err := decodeChange(item, st.URL)
			if err != nil {
				panic(fmt.Sprintf("alerts state: sent change: %v", err))
			}
			out = append(out, c)
		}
		return true
	})
	return out
}

// Rule is what the alerts need to know about one site. Zero thresholds
// take the processor's defaults.
type Rule struct {
	// Name is the site's name for people; the URL when empty.
	Name string
	// Failures is the number of consecutive down checks that make an up
	// (or unknown) site down.
	Failures int
	// Successes is the number of consecutive up checks that make a down
	// (or unknown) site up.
	Successes int
	// Interval is the time between two of the site's checks in a region:
	// a region whose newest check is older than recentFactor intervals
	// before the URL's newest check no longer counts. Zero means
	// defaultInterval.
	Interval time.Duration
}

// defaultInterval is the interval of a site the processor knows nothing
// about: the sites file's default (config.DefaultInterval).
const defaultInterval = time.Minute

// recentFactor is how many intervals back from the URL's newest check a
// region's newest check may be and still count: one interval plus half
// of one for a slow check or a late batch.
const recentFactor = 1.5

// verdict says what became of one event.
type verdict int

const (
	applied verdict = iota
	// duplicate: an event applied before (re-delivered); the changes it
	// made are sent again.
	duplicate
	// late: older than the newest event applied for the URL in its
	// region; not applied, since a run only moves forward in checked_at
	// order.
	late
)

// rules are the thresholds in force, shared by the goka callback and the
// benchmarks.
type rules struct {
	failures, successes int
	// certWarning is how long before expiry a certificate is reported.
	certWarning time.Duration
	// quorum is how many recent regions must agree (-alert-quorum); zero
	// means a majority of the recent regions.
	quorum int
}

// apply folds result r into st and returns the changes to emit.
func (p rules) apply(st *state, r *codecs.Result, rule Rule) (verdict, []*codecs.StatusChange) {
	region := codecs.RegionOrDefault(r.Region)
	if newest := st.regionNewest(region); !newest.IsZero() && !r.CheckedAt.After(newest) {
		if !slices.Contains(st.Recent, r.EventID) {
			return late, nil
		}
		// A crash may have lost the emission while the table kept the
		// state it led to: send the changes this event made again, with
		// their ids, so that nothing is lost; receivers deduplicate.
		return duplicate, st.sentBy(r.EventID)
	}
	failures, successes := rule.Failures, rule.Successes
	if failures <= 0 {
		failures = p.failures
	}
	if successes <= 0 {
		successes = p.successes
	}
	name := rule.Name
	if name == "" {
		name = r.URL
	}

	up := r.Up()
	run := st.run(region)
	if run.RunCount > 0 && run.RunUp == up {
		run.RunCount++
	} else {
		run.RunUp, run.RunCount, run.RunSince = up, 1, r.CheckedAt
	}
	run.Newest = r.CheckedAt
	st.RunUp, st.RunCount, st.RunSince = run.RunUp, run.RunCount, run.RunSince
	if r.CheckedAt.After(st.Newest) {
		st.Newest = r.CheckedAt
	}
	st.Recent = append(st.Recent, r.EventID)
	// As many ids per region as one region had before regions.
	if keep := recentIDs * max(1, len(st.Runs)); len(st.Recent) > keep {
		st.Recent = slices.Delete(st.Recent, 0, len(st.Recent)-keep)
	}

	// The region's view moves as the site's state did before regions.
	switch {
	case run.View == "":
		run.View = codecs.StateUnknown
		fallthrough
	default:
		if !up && run.View != codecs.StateDown && run.RunCount >= failures {
			run.View = codecs.StateDown
		} else if up && run.View != codecs.StateUp && run.RunCount >= successes {
			run.View = codecs.StateUp
		}
	}

	if st.State == "" {
		st.State = codecs.StateUnknown
	}
	v := p.vote(st, rule.Interval)
	var out []*codecs.StatusChange
	before := st.State
	switch {
	case st.State != codecs.StateDown && v.down >= v.quorum:
		st.State = codecs.StateDown
		out = append(out, st.quorumChange(r, name, codecs.ChangeDown, before, region, v.since))
	case st.State == codecs.StateDown && v.down < v.quorum && v.up >= v.quorum:
		st.State = codecs.StateUp
		out = append(out, st.quorumChange(r, name, codecs.ChangeUp, before, region, v.since))
	case st.State == codecs.StateUnknown && v.down < v.quorum && v.up >= v.quorum:
		// A site's first checks set its state; being up is no news.
		st.State = codecs.StateUp
	}

	if r.TLSNotAfter != nil {
		if kind := p.cert(st, *r.TLSNotAfter, r.CheckedAt); kind != "" {
			// The site's availability did not change: both states are
			// the current one (the check's outcome while unknown).
			cur := st.State
			if cur == codecs.StateUnknown {
				cur = r.Outcome
			}
			c := newChange(r, name, kind, cur, st.State, r.CheckedAt, st.RunCount)
			out = append(out, c)
		}
	}
	for _, c := range out {
		st.remember(c)
	}
	return applied, out
}

// votes count the recent regions' views that are down or up (counts
// rather than lists: this runs for every event, and the agreeing regions
// are listed only for a change).
type votes struct {
	down, up int
	// quorum is how many of them make the site down or up.
	quorum int
	// since is the oldest newest check of a region that counts.
	since time.Time
}

// vote counts the views of the regions that checked the URL recently
// (see Rule.Interval). With one region the quorum is 1 and the region's
// view is the site's state, as before regions.
func (p rules) vote(st *state, interval time.Duration) votes {
	if interval <= 0 {
		interval = defaultInterval
	}
	v := votes{since: st.Newest.Add(-time.Duration(recentFactor * float64(interval)))}
	recent := 0
	for _, run := range st.Runs {
		if run.Newest.Before(v.since) {
			continue
		}
		recent++
		switch run.View {
		case codecs.StateDown:
			v.down++
		case codecs.StateUp:
			v.up++
		}
	}
	v.quorum = p.quorum
	if v.quorum <= 0 {
		v.quorum = recent/2 + 1
	}
	return v
}

// quorumChange describes a change to kind crossed by check r of region,
// agreed by the views of the regions whose newest check is from recent
// on. since is the earliest start of their
// runs in that direction (a view stays down through fewer good checks
// than the successes threshold, and those runs do not count), and
// consecutive the crossing region's run (or the longest such run, when
// the crossing check made another region's view stale instead); regions
// are their names when the URL is checked from several.
func (st *state) quorumChange(r *codecs.Result, name, kind, previous, region string, recent time.Time) *codecs.StatusChange {
	wantUp := kind == codecs.ChangeUp
	view := codecs.StateDown
	if wantUp {
		view = codecs.StateUp
	}
	since, consecutive, crossing := r.CheckedAt, 0, false
	var names []string
	for _, run := range st.Runs {
		if run.Newest.Before(recent) || run.View != view {
			continue
		}
		names = append(names, run.Region)
		if run.RunUp != wantUp {
			continue
		}
		if run.RunSince.Before(since) {
			since = run.RunSince
		}
		switch {
		case run.Region == region:
			consecutive, crossing = run.RunCount, true
		case !crossing && run.RunCount > consecutive:
			consecutive = run.RunCount
		}
	}
	c := newChange(r, name, kind, view, previous, since, consecutive)
	if len(st.Runs) > 1 {
		slices.Sort(names)
		c.Regions = names
	}
	return c
}

// cert updates the certificate state with an expiry seen at checkedAt and
// returns the kind of change to emit, if any: cert_expiring once when the
// expiry comes within the warning, cert_ok when a certificate outside it
// replaces one that was expiring.
func (p rules) cert(st *state, notAfter, checkedAt time.Time) string {
	soon := notAfter.Sub(checkedAt) < p.certWarning
	switch {
	case soon && st.Cert != certExpiring:
		st.Cert, st.CertNotAfter = certExpiring, notAfter
		return codecs.ChangeCertExpiring
	case soon:
		// Renewed for too short, or an older certificate from another
		// server behind the same name: still expiring, already said.
		if notAfter.After(st.CertNotAfter) {
			st.CertNotAfter = notAfter
		}
		return ""
	case st.Cert == certExpiring:
		st.Cert, st.CertNotAfter = certOK, notAfter
		return codecs.ChangeCertOK
	}
	st.Cert, st.CertNotAfter = certOK, notAfter
	return ""
}

// newChange describes a change crossed by check r.
func newChange(r *codecs.Result, name, kind, state, previous string, since time.Time, consecutive int) *codecs.StatusChange {
	return &codecs.StatusChange{
		V:             codecs.Version,
		ChangeID:      changeID(r.URL, kind, r.EventID),
		URL:           r.URL,
		Name:          name,
		Kind:          kind,
		State:         state,
		PreviousState: previous,
		Since:         since,
		ChangedAt:     r.CheckedAt,
		Consecutive:   consecutive,
		EventID:       r.EventID,
		ErrorKind:     r.ErrorKind,
		ErrorMessage:  r.ErrorMessage,
		StatusCode:    r.StatusCode,
		TLSNotAfter:   r.TLSNotAfter,
	}
}

// changeID derives a change's id from what made it: the same check
// crossing the same threshold of the same URL gives the same id, in a
// replay after a crash, in another instance, or in a re-send.
func changeID(url, kind, eventID string) string {
	h := sha256.New()
	for _, s := range []string{url, kind, eventID} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
