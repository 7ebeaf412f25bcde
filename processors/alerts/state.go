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
	// The current run: consecutive checks with the same outcome, the
	// first of which ran at RunSince.
	RunUp    bool
	RunCount int
	RunSince time.Time
	// Newest is the checked_at of the newest event applied: events are
	// applied in checked_at order, and an older one is not applied.
	Newest time.Time
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
	held itemList
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
func (st *state) holding() int { return st.held.n }

// hold adds an event to the held ones in checked_at order, unless it is
// there already (a re-delivery while it waits).
func (st *state) hold(e *pending) {
	last := time.Time{}
	dup := false
	st.held.each(func(item []byte) bool {
		at, id := heldKey(item)
		if string(id) == e.Result.EventID {
			dup = true
			return false
		}
		last = at
		return true
	})
	if dup {
		return
	}
	item := appendHeld(nil, e)
	if st.held.n == 0 || !e.Result.CheckedAt.Before(last) {
		// The common case: newer than every held event (equal times keep
		// arrival order).
		st.held.add(item)
		return
	}
	var items [][]byte
	inserted := false
	st.held.each(func(it []byte) bool {
		if at, _ := heldKey(it); !inserted && at.After(e.Result.CheckedAt) {
			items, inserted = append(items, item), true
		}
		items = append(items, it)
		return true
	})
	var l itemList
	for _, it := range items {
		l.add(it)
	}
	st.held = l
}

// oldestHeld returns the oldest held event.
func (st *state) oldestHeld() *pending {
	e, err := decodeHeld(st.held.first(), st.URL)
	if err != nil {
		// Items are checked when the state is decoded.
		panic(fmt.Sprintf("alerts state: held event: %v", err))
	}
	return e
}

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
}

// verdict says what became of one event.
type verdict int

const (
	applied verdict = iota
	// duplicate: an event applied before (re-delivered); the changes it
	// made are sent again.
	duplicate
	// late: older than the newest event applied for the URL; not applied,
	// since state only moves forward in checked_at order.
	late
)

// rules are the thresholds in force, shared by the goka callback and the
// benchmarks.
type rules struct {
	failures, successes int
	// certWarning is how long before expiry a certificate is reported.
	certWarning time.Duration
}

// apply folds result r into st and returns the changes to emit.
func (p rules) apply(st *state, r *codecs.Result, rule Rule) (verdict, []*codecs.StatusChange) {
	if !st.Newest.IsZero() && !r.CheckedAt.After(st.Newest) {
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
	if st.RunCount > 0 && st.RunUp == up {
		st.RunCount++
	} else {
		st.RunUp, st.RunCount, st.RunSince = up, 1, r.CheckedAt
	}
	st.Newest = r.CheckedAt
	st.Recent = append(st.Recent, r.EventID)
	if len(st.Recent) > recentIDs {
		st.Recent = slices.Delete(st.Recent, 0, len(st.Recent)-recentIDs)
	}

	if st.State == "" {
		st.State = codecs.StateUnknown
	}
	var out []*codecs.StatusChange
	before := st.State
	switch {
	case !up && st.State != codecs.StateDown && st.RunCount >= failures:
		st.State = codecs.StateDown
		out = append(out, newChange(r, name, codecs.ChangeDown, st.State, before, st.RunSince, st.RunCount))
	case up && st.State == codecs.StateDown && st.RunCount >= successes:
		st.State = codecs.StateUp
		out = append(out, newChange(r, name, codecs.ChangeUp, st.State, before, st.RunSince, st.RunCount))
	case up && st.State == codecs.StateUnknown && st.RunCount >= successes:
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
