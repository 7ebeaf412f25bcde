package alerts

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/lovoo/goka"

	"github.com/sitewatch/sitewatch/codecs"
)

// stateVersion is the version of the group-table value this build reads
// and writes; a table written by another version stops the processor
// (goka panics on a decode error) rather than being misread.
const stateVersion = 1

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

// state is one URL's value in the group table.
type state struct {
	V int `json:"v"`
	// State is unknown, up or down.
	State string `json:"state"`
	// The current run: consecutive checks with the same outcome, the
	// first of which ran at RunSince.
	RunUp    bool      `json:"run_up"`
	RunCount int       `json:"run_count"`
	RunSince time.Time `json:"run_since"`
	// Newest is the checked_at of the newest event applied: events are
	// applied in checked_at order, and an older one is not applied.
	Newest time.Time `json:"newest"`
	// Recent are the last event_ids applied, oldest first.
	Recent []string `json:"recent"`
	// Cert is the certificate state; CertNotAfter the expiry it is about.
	Cert         string    `json:"cert,omitempty"`
	CertNotAfter time.Time `json:"cert_not_after,omitzero"`
	// Sent are the last changes emitted, oldest first.
	Sent []*codecs.StatusChange `json:"sent,omitempty"`
	// Pending are events held back until the other input topic has caught
	// up with them (see order.go), in checked_at order.
	Pending []*pending `json:"pending,omitempty"`
}

// pending is one held-back event.
type pending struct {
	Result *codecs.Result `json:"result"`
	Topic  string         `json:"topic"`
	// HeldAt is the wall time it was held back.
	HeldAt time.Time `json:"held_at"`
}

// hold adds an event to st.Pending in checked_at order, unless it is
// there already (a re-delivery while it waits).
func (st *state) hold(e *pending) {
	for _, q := range st.Pending {
		if q.Result.EventID == e.Result.EventID {
			return
		}
	}
	i, _ := slices.BinarySearchFunc(st.Pending, e.Result.CheckedAt, func(q *pending, t time.Time) int {
		if q.Result.CheckedAt.After(t) {
			return 1
		}
		return -1 // equal times keep arrival order
	})
	st.Pending = slices.Insert(st.Pending, i, e)
}

// stateCodec stores *state as JSON in the group table.
type stateCodec struct{}

var _ goka.Codec = stateCodec{}

func (stateCodec) Encode(value any) ([]byte, error) {
	st, ok := value.(*state)
	if !ok {
		return nil, fmt.Errorf("encode alerts state: got %T, want *state", value)
	}
	st.V = stateVersion
	return json.Marshal(st)
}

func (stateCodec) Decode(data []byte) (any, error) {
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("decode alerts state: %w", err)
	}
	if st.V != stateVersion {
		return nil, fmt.Errorf("decode alerts state: version %d, want %d", st.V, stateVersion)
	}
	return &st, nil
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
		var again []*codecs.StatusChange
		for _, c := range st.Sent {
			if c.EventID == r.EventID {
				again = append(again, c)
			}
		}
		return duplicate, again
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
	if len(out) > 0 {
		st.Sent = append(st.Sent, out...)
		if len(st.Sent) > sentChanges {
			st.Sent = slices.Delete(st.Sent, 0, len(st.Sent)-sentChanges)
		}
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
