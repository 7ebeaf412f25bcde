package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lovoo/goka"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/testkit"
)

// poison is one malformed message and what its dead letter's reason must
// say, per consumer ("" means: no dead letter from that consumer).
type poison struct {
	name    string
	topic   goka.Stream
	key     string
	value   []byte
	reasons map[string]string // consumer → reason substring
}

// withField returns a function that re-encodes the JSON object b with one
// field set to v: the building block of every "valid but for one field"
// poison message.
func withField(b []byte) func(k string, v any) []byte {
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return func(k string, v any) []byte {
		c := maps.Clone(m)
		c[k] = v
		out, _ := json.Marshal(c)
		return out
	}
}

// randomBytes returns n bytes of noise from r.
func randomBytes(r *rand.Rand, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = byte(r.IntN(256))
	}
	return out
}

// resultPoison builds the malformed variants of a valid result: random
// bytes, truncated JSON, a future version, missing fields, wrong types,
// numbers beyond any range, an empty value, and a URL too long for the
// index (valid JSON, refused by the store alone).
func resultPoison(r *rand.Rand, valid *codecs.Result) []poison {
	b, _ := codecs.ResultCodec{}.Encode(valid)
	with := withField(b)
	random := randomBytes(r, 200)
	// Every consumer of the result topics sends its own dead letter.
	both := func(reason string) map[string]string {
		return map[string]string{"windows": reason, "alerts": reason, "sink_results": reason}
	}
	longRes := *valid
	var sb strings.Builder
	for range 9000 {
		sb.WriteByte("abcdefghijklmnopqrstuvwxyz0123456789"[r.IntN(36)])
	}
	longRes.URL = "http://poison-long.test/" + sb.String()
	longRes.EventID = valid.EventID + "-long-url"
	longJSON, _ := codecs.ResultCodec{}.Encode(&longRes)
	return []poison{
		{"random bytes", "", valid.URL, random, both("invalid json")},
		{"truncated json", "", valid.URL, b[:len(b)/2], both("invalid json")},
		{"future version", "", valid.URL, with("v", 2), both("unsupported version 2")},
		{"missing fields", "", valid.URL, []byte(`{"v":1,"url":"` + valid.URL + `"}`), both("missing field")},
		{"wrong type", "", valid.URL, with("status_code", "200"), both("cannot unmarshal")},
		{"number too big for its type", "", valid.URL, with("body_bytes", 1e30), both("invalid json")},
		{"huge response time", "", valid.URL, with("response_time_ms", 1e300), both("out of range")},
		{"empty value", "", valid.URL, nil, both("")},
		{"url too long for the index", "", longRes.URL, longJSON, map[string]string{"sink_results": "rejected by store"}},
	}
}

// windowPoison builds the malformed variants of a valid window.
func windowPoison(r *rand.Rand, valid *codecs.Window) []poison {
	b, _ := codecs.WindowCodec{}.Encode(valid)
	with := withField(b)
	random := randomBytes(r, 200)
	sink := func(reason string) map[string]string { return map[string]string{"sink_windows": reason} }
	return []poison{
		{"random bytes", topics.Windows, valid.URL, random, sink("invalid json")},
		{"truncated json", topics.Windows, valid.URL, b[:len(b)/2], sink("invalid json")},
		{"future version", topics.Windows, valid.URL, with("v", 7), sink("unsupported version 7")},
		{"missing fields", topics.Windows, valid.URL, []byte(`{"v":1,"url":"` + valid.URL + `"}`), sink("missing field")},
		{"wrong type", topics.Windows, valid.URL, with("checks", "12"), sink("cannot unmarshal")},
		{"checks beyond the column", topics.Windows, valid.URL, with("checks", 1e12), sink("rejected by store")},
		{"empty value", topics.Windows, valid.URL, nil, sink("")},
	}
}

// TestBadMessagesGoToDeadLetters puts malformed messages among valid ones
// on both result topics and on status_windows. Each must reach
// sitewatch_dead_letters from every consumer of its topic, with its bytes,
// origin and reason, and the valid messages around it must be stored as
// usual: processing goes on. (The codecs' fuzzers cover the decoder
// itself; this is about the running programs.)
func TestBadMessagesGoToDeadLetters(t *testing.T) {
	skipShort(t)
	r := rng(t)
	e := newEnv(t)
	db := e.connect()
	s := genStream(r, "bm", 4, 40)
	valid := s.events[0]
	var all []poison
	for _, tp := range []goka.Stream{topics.Succeeded, topics.Failed} {
		for _, pm := range resultPoison(r, valid) {
			pm.topic = tp
			all = append(all, pm)
		}
	}
	avg := 12.5
	wstart := time.Now().UTC().Truncate(windowSize).Add(-48 * time.Hour)
	w := &codecs.Window{URL: "http://bm-window.test/", WindowStart: wstart, WindowEnd: wstart.Add(windowSize),
		Checks: 3, Failures: 1, Responses: 2, ResponseMinMS: &avg, ResponseAvgMS: &avg, ResponseMaxMS: &avg,
		ResponseP50MS: &avg, ResponseP95MS: &avg, ResponseP99MS: &avg, StatusCounts: map[string]int64{"200": 2, "0": 1}, Revision: 1}
	all = append(all, windowPoison(r, w)...)

	p := e.producer()
	half := len(s.events) / 2
	p.results(s.events[:half]...)
	for _, pm := range all {
		p.raw(pm.topic, pm.key, pm.value)
	}
	p.results(s.events[half:]...)
	p.wait()
	proc := e.startProcessor("processor", e.db)

	type origin struct{ consumer, topic, value string }
	want := map[origin]string{}
	for _, pm := range all {
		for consumer, reason := range pm.reasons {
			want[origin{consumer, string(pm.topic), string(pm.value)}] = reason
		}
	}
	// The valid events, and the long-URL one the store refuses, must be
	// handled: the neighbours stored, every dead letter sent.
	took := e.settle(db, s.ids(), s.closedBefore, func(u string, _ time.Time) bool { return strings.HasPrefix(u, "http://poison-long") }, 90*time.Second)
	var dls []*codecs.DeadLetter
	waitFor(t, 60*time.Second, "every dead letter", func() (bool, string) {
		dls = e.deadLetters()
		return len(dls) >= len(want), fmt.Sprintf("%d of %d", len(dls), len(want))
	})
	got := map[origin]*codecs.DeadLetter{}
	for _, d := range dls {
		o := origin{d.Consumer, d.Topic, string(d.Value)}
		if _, ok := want[o]; !ok {
			t.Errorf("unexpected dead letter from %s for %s offset %d: %q (%s)", d.Consumer, d.Topic, d.Offset, clip(string(d.Value), 80), d.Reason)
			continue
		}
		if got[o] != nil {
			t.Errorf("dead letter from %s for %s %q twice", d.Consumer, d.Topic, clip(string(d.Value), 80))
		}
		got[o] = d
	}
	for _, pm := range all {
		for consumer, reason := range pm.reasons {
			d := got[origin{consumer, string(pm.topic), string(pm.value)}]
			switch {
			case d == nil:
				t.Errorf("%s on %s: no dead letter from %s", pm.name, pm.topic, consumer)
			case !strings.Contains(d.Reason, reason):
				t.Errorf("%s on %s: %s's reason %q does not mention %q", pm.name, pm.topic, consumer, d.Reason, reason)
			case d.Offset < 0 || d.FailedAt.IsZero() || d.Topic != string(pm.topic):
				t.Errorf("%s on %s: dead letter from %s lacks its origin: %+v", pm.name, pm.topic, consumer, d)
			}
		}
	}
	stored, _ := testkit.StoredEventCounts(context.Background(), db)
	record(t, figure{fault: "bad messages on 3 topics", injected: len(all), produced: len(s.events), stored: len(stored),
		dupes: duplicates(stored), recovery: took, note: fmt.Sprintf("%d dead letters, each with its reason", len(dls))})
	if code := proc.stop(60 * time.Second); code != 0 {
		t.Errorf("processor exit status %d after SIGTERM, want 0", code)
	}
}

// TestSitesReloadWithErrorKeepsOldSites sends SIGHUP to a running emitter
// after breaking its sites file: it must log why, naming the file and the
// line, and keep checking the old sites; a good file on the next SIGHUP is
// taken.
func TestSitesReloadWithErrorKeepsOldSites(t *testing.T) {
	skipShort(t)
	e := newEnv(t)
	st := newSites(t, 3, "")
	em := e.startEmitter("emitter", st.path)
	waitFor(t, 60*time.Second, "every site checked", func() (bool, string) {
		for i, h := range st.hits {
			if h.Load() == 0 {
				return false, fmt.Sprintf("site %d not checked yet", i)
			}
		}
		return true, ""
	})
	good, err := os.ReadFile(st.path)
	if err != nil {
		t.Fatal(err)
	}
	broken := string(good) + "  - url: http://new-site.test/\n    regexp: \"(unclosed\"\n"
	if err := os.WriteFile(st.path, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	hitsBefore := make([]int64, len(st.hits))
	for i, h := range st.hits {
		hitsBefore[i] = h.Load()
	}
	if err := em.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	em.waitLog("sites reload refused; keeping the previous sites", 20*time.Second)
	line := grepLines(em.logs.String(), "sites reload refused")[0]
	brokenLine := strings.Count(string(good), "\n") + 2
	if !strings.Contains(line, fmt.Sprintf("%s:%d", st.path, brokenLine)) || !strings.Contains(line, "regexp") {
		t.Errorf("reload error does not name %s:%d and the regexp: %s", st.path, brokenLine, line)
	}
	// The old sites keep being checked.
	waitFor(t, 30*time.Second, "the old sites checked after the refused reload", func() (bool, string) {
		for i, h := range st.hits {
			if h.Load() < hitsBefore[i]+3 {
				return false, fmt.Sprintf("site %d: %d checks since", i, h.Load()-hitsBefore[i])
			}
		}
		return true, ""
	})
	if em.exited() {
		t.Fatalf("emitter exited after a bad reload")
	}
	// The refused reload is visible to monitoring, as blackbox_exporter's.
	loadedAt := em.metric("sitewatch_config_last_reload_success_timestamp_seconds")
	if ok := em.metric("sitewatch_config_last_reload_successful"); ok != 0 || loadedAt <= 0 {
		t.Errorf("after a refused reload: last_reload_successful %v, success timestamp %v; want 0 and the start", ok, loadedAt)
	}
	// A good file is taken on the next SIGHUP: one site removed.
	st.write(t, st.urls[:2], "")
	if err := em.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	em.waitLog("sites reloaded", 20*time.Second)
	if ok, at := em.metric("sitewatch_config_last_reload_successful"), em.metric("sitewatch_config_last_reload_success_timestamp_seconds"); ok != 1 || at <= loadedAt {
		t.Errorf("after a good reload: last_reload_successful %v, success timestamp %v (before %v); want 1 and later", ok, at, loadedAt)
	}
	time.Sleep(2 * time.Second)
	removedHits := st.hits[2].Load()
	time.Sleep(3 * time.Second)
	if n := st.hits[2].Load() - removedHits; n > 0 {
		t.Errorf("the removed site was checked %d more times after the reload", n)
	}
	record(t, figure{fault: "broken sites file on SIGHUP", injected: 1, produced: int(st.totalHits()), stored: int(st.totalHits()),
		note: "old sites kept and checked; the next good file taken"})
	if code := em.stop(60 * time.Second); code != 0 {
		t.Errorf("emitter exit status %d after SIGTERM, want 0", code)
	}
}
