package faults

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
)

// TestHostileSitesDoNotDelayOthers runs the emitter on ten ordinary sites
// and two hostile ones, all checked every second: a slowloris site that
// trickles its body one byte every 100 ms and never ends, and a site that
// sends a 1 GiB body. The hostile checks must end down (timeout,
// body_too_large) without holding up the others, whose every slot is
// checked in time, and the emitter's peak memory stays far below what one
// such body would take. (checker/ tests the hostile answers themselves.)
func TestHostileSitesDoNotDelayOthers(t *testing.T) {
	skipShort(t)
	e := newEnv(t)
	var sent atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/ok/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "fine") })
	mux.HandleFunc("/slowloris", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		for {
			if _, err := w.Write([]byte("x")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	chunk := make([]byte, 64<<10)
	mux.HandleFunc("/huge", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(1<<30))
		for n := 0; n < 1<<30; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			sent.Add(int64(len(chunk)))
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	st := &sites{path: filepath.Join(t.TempDir(), "sites.yaml")}
	for i := range 10 {
		st.urls = append(st.urls, srv.URL+"/ok/"+strconv.Itoa(i))
	}
	slow, huge := srv.URL+"/slowloris", srv.URL+"/huge"
	st.write(t, append(append([]string{}, st.urls...), slow, huge), "")
	em := e.startEmitter("emitter", st.path)

	const run = 12 * time.Second
	time.Sleep(run)
	hwm := em.vmHWM()
	stale := em.metric("sitewatch_requests_stale_total")
	if code := em.stop(90 * time.Second); code != 0 {
		t.Errorf("emitter exit status %d after SIGTERM, want 0", code)
	}
	produced, _ := e.producedResults()
	perURL := map[string][]*codecs.Result{}
	for _, r := range produced {
		perURL[r.URL] = append(perURL[r.URL], r)
	}
	// Every ordinary site: one result per slot between its first and last
	// result, none missing (a delayed check would be stale and skipped).
	missing, checks := 0, 0
	var worstDelay time.Duration
	for _, u := range st.urls {
		rs := perURL[u]
		if len(rs) < 5 {
			t.Errorf("%s: %d results in %v", u, len(rs), run)
			continue
		}
		first, last := rs[0].ScheduledAt, rs[0].ScheduledAt
		for _, r := range rs {
			if r.ScheduledAt.Before(first) {
				first = r.ScheduledAt
			}
			if r.ScheduledAt.After(last) {
				last = r.ScheduledAt
			}
			if !r.Up() {
				t.Errorf("%s: down (%v) next to hostile sites", u, r.ErrorMessage)
			}
			worstDelay = max(worstDelay, r.CheckedAt.Sub(r.ScheduledAt))
		}
		slots := int(last.Sub(first)/time.Second) + 1
		missing += slots - len(rs)
		checks += len(rs)
	}
	// A hostile site holding the others up would cost them most of their
	// slots (the slowloris holds its check for 900 ms of every second); a
	// machine busy with other tests may cost a few.
	if missing*10 > checks {
		t.Errorf("%d slots of the ordinary sites were not checked (%d checked)", missing, checks)
	}
	for u, kind := range map[string]string{slow: codecs.ErrTimeout, huge: codecs.ErrBodyTooLarge} {
		rs := perURL[u]
		if len(rs) == 0 {
			t.Errorf("%s: no result", u)
		}
		for _, r := range rs {
			if r.Up() || r.ErrorKind == nil || *r.ErrorKind != kind {
				t.Errorf("%s: outcome %s, error_kind %v; want down, %s", u, r.Outcome, r.ErrorKind, kind)
			}
		}
	}
	// A 1 GiB body read whole would take a gigabyte; the race detector
	// alone multiplies the emitter's own footprint several times.
	limit := int64(200 << 20)
	if raceEnabled {
		limit = 400 << 20
	}
	if hwm <= 0 || hwm > limit {
		t.Errorf("emitter peak memory (VmHWM) %d MiB, want at most %d MiB", hwm>>20, limit>>20)
	}
	record(t, figure{fault: "hostile sites: slowloris + 1 GiB body", injected: len(perURL[slow]) + len(perURL[huge]), produced: checks, stored: checks,
		note: fmt.Sprintf("ordinary slots missed %d, worst start delay %v, stale %v; VmHWM %d MiB; %d MiB of the big body sent",
			missing, worstDelay.Round(time.Millisecond), stale, hwm>>20, sent.Load()>>20)})
}
