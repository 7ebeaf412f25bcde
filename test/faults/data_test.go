package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/testkit"
)

const windowSize = 5 * time.Minute

// windowStart is the start of the five-minute window holding t (aligned to
// the Unix epoch, as the processor and check_windows_recomputed cut them).
func windowStart(t time.Time) time.Time {
	return time.Unix(0, t.UnixNano()-((t.UnixNano()%int64(windowSize))+int64(windowSize))%int64(windowSize)).UTC()
}

// stream is a generated workload of results in production order.
type stream struct {
	events []*codecs.Result
	// closedBefore: every window ending at or before it is closed by a
	// later event of its URL and must be in check_windows.
	closedBefore time.Time
}

// genStream makes perURL results for each of urls URLs, one every 30 s of
// event time (random within its slot, nanosecond timestamps as the checker
// sends them) starting three hours ago, with every outcome the windows
// aggregate; then one later event per URL that closes the last real
// windows. Events are in event-time order across URLs, like a live feed.
func genStream(r *rand.Rand, tag string, urls, perURL int) *stream {
	base := time.Now().UTC().Truncate(windowSize).Add(-3 * time.Hour)
	s := &stream{}
	for i := range perURL {
		for u := range urls {
			at := base.Add(time.Duration(i)*30*time.Second + time.Duration(r.Int64N(int64(29*time.Second))))
			ev := testkit.RandomResult(r, siteURL(tag, u), fmt.Sprintf("%s-%02d-%04d", tag, u, i), at, "fault-suite")
			if u%2 == 0 {
				// An emitter's id, its slot's (the windows keep such an
				// event by slot, any other by its id).
				ev.EventID = codecs.SlotEventID(ev.URL, ev.ScheduledAt, codecs.DefaultRegion)
			}
			s.events = append(s.events, ev)
		}
	}
	sort.SliceStable(s.events, func(i, j int) bool { return s.events[i].CheckedAt.Before(s.events[j].CheckedAt) })
	flush := base.Add(time.Duration(perURL)*30*time.Second + 10*time.Minute)
	s.closedBefore = windowStart(flush)
	for u := range urls {
		s.events = append(s.events, testkit.RandomResult(r, siteURL(tag, u), fmt.Sprintf("%s-%02d-flush", tag, u), flush.Add(time.Duration(u)*time.Second), "fault-suite"))
	}
	return s
}

// recheck adds, for n random events of s (not the flush ones), the same
// slot checked again after a crash: the url_checker re-checks a
// redelivered request, so the repeat has the event's event_id and
// scheduled_at, a checked_at 1 to 40 s later (in the next window at times)
// and its own response time. It keeps the outcome, so that the repeat is
// on the same topic and every consumer reads it after the first check in
// the same partition: the store keeps that first one and the windows count
// it. The events stay in checked_at order.
func (s *stream) recheck(r *rand.Rand, n int) {
	k := len(s.events) - countFlush(s.events)
	real, flush := slices.Clone(s.events[:k]), slices.Clone(s.events[k:])
	for _, i := range r.Perm(k)[:n] {
		c := *real[i]
		c.CheckedAt = c.CheckedAt.Add(time.Second + time.Duration(r.Int64N(int64(39*time.Second))))
		if c.ResponseTimeMS != nil {
			ms := *c.ResponseTimeMS * 3
			c.ResponseTimeMS = &ms
		}
		c.Checker = "fault-suite-recheck"
		real = append(real, &c)
	}
	sort.SliceStable(real, func(i, j int) bool { return real[i].CheckedAt.Before(real[j].CheckedAt) })
	s.events = append(real, flush...)
}

func countFlush(rs []*codecs.Result) int {
	n := 0
	for _, r := range rs {
		if strings.HasSuffix(r.EventID, "-flush") {
			n++
		}
	}
	return n
}

// recheckedSlots counts the event_ids of rs that were checked more than
// once (distinct checked_at), as opposed to a message sent twice.
func recheckedSlots(rs []*codecs.Result) int {
	seen := map[string]map[time.Time]bool{}
	n := 0
	for _, r := range rs {
		if seen[r.EventID] == nil {
			seen[r.EventID] = map[time.Time]bool{}
		}
		seen[r.EventID][r.CheckedAt] = true
		if len(seen[r.EventID]) == 2 {
			n++
		}
	}
	return n
}

func siteURL(tag string, u int) string { return fmt.Sprintf("http://%s-%02d.test/", tag, u) }

func (s *stream) ids() map[string]bool { return testkit.EventIDs(s.events) }

func duplicates(stored map[string]int) int {
	n := 0
	for _, c := range stored {
		n += c - 1
	}
	return n
}

// settle waits until check_results holds each wanted event exactly once
// and the closed windows equal SQL's, and returns how long it took. It
// fails the test after timeout with the last differences.
func settle(t *testing.T, db *pgx.Conn, want map[string]bool, closedBefore time.Time, skip func(string, time.Time) bool, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	waitFor(t, timeout, "check_results and check_windows to match the events produced", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		stored, err := testkit.StoredEventCounts(ctx, db)
		if err != nil {
			return false, err.Error()
		}
		if d := testkit.ExactlyOnce(stored, want); d != "" {
			return false, d
		}
		if closedBefore.IsZero() {
			return true, ""
		}
		cmp, err := testkit.CompareWindows(ctx, db, closedBefore, skip)
		if err != nil {
			return false, err.Error()
		}
		if cmp.Compared == 0 {
			return false, "no window in check_windows to compare\n" + cmp.String()
		}
		d := cmp.String()
		return d == "", d
	})
	return time.Since(start)
}

// sites is a set of local websites and a sites file checking them every
// second.
type sites struct {
	path string
	urls []string
	hits []*atomic.Int64
}

// newSites starts n websites answering 200 (every fifth one 503) and
// writes a sites file that checks each every interval.
func newSites(t *testing.T, n int, extraYAML string) *sites {
	t.Helper()
	s := &sites{}
	for i := range n {
		hits := new(atomic.Int64)
		status := http.StatusOK
		if i%5 == 4 {
			status = http.StatusServiceUnavailable
		}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			hits.Add(1)
			w.WriteHeader(status)
			fmt.Fprintf(w, "<html>site %d</html>", i)
		}))
		t.Cleanup(srv.Close)
		s.urls = append(s.urls, srv.URL+"/")
		s.hits = append(s.hits, hits)
	}
	s.path = filepath.Join(t.TempDir(), "sites.yaml")
	s.write(t, s.urls, extraYAML)
	return s
}

// write replaces the sites file with urls checked every second.
func (s *sites) write(t *testing.T, urls []string, extraYAML string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("defaults:\n  interval: 1s\n  timeout: 900ms\nsites:\n")
	for _, u := range urls {
		fmt.Fprintf(&b, "  - url: %s\n", u)
	}
	b.WriteString(extraYAML)
	if err := os.WriteFile(s.path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (s *sites) totalHits() int64 {
	var n int64
	for _, h := range s.hits {
		n += h.Load()
	}
	return n
}

// closeLiveWindows makes the windows of live (wall-clock) results closed:
// after the emitters stopped, one more event per URL ten minutes ahead
// moves each URL's watermark past every window so far (the processor caps
// it five minutes ahead of its clock). It returns the events sent and the
// end of the closed windows.
func closeLiveWindows(p *producer, urls []string) ([]*codecs.Result, time.Time) {
	at := time.Now().UTC().Add(10 * time.Minute)
	var out []*codecs.Result
	for i, u := range urls {
		r := &codecs.Result{
			EventID: fmt.Sprintf("flush-%d-%d", at.UnixNano(), i), URL: u,
			ScheduledAt: at.Truncate(time.Second), CheckedAt: at,
			Outcome: codecs.OutcomeUp, StatusCode: 200, Checker: "fault-suite",
		}
		out = append(out, r)
	}
	p.results(out...)
	return out, windowStart(at)
}
