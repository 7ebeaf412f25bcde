package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/scheduler"
)

// versions is a local website that remembers, per path, the X-Version
// header of each check: an edit of a site's headers reaching the checks.
type versions struct {
	url  string
	mu   sync.Mutex
	seen map[string][]string
}

func newVersions(t *testing.T) *versions {
	t.Helper()
	v := &versions{seen: map[string][]string{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v.mu.Lock()
		v.seen[r.URL.Path] = append(v.seen[r.URL.Path], r.Header.Get("X-Version"))
		v.mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	v.url = srv.URL
	return v
}

// checks returns how many checks path had, and how many with version.
func (v *versions) checks(path, version string) (all, with int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, s := range v.seen[path] {
		if s == version {
			with++
		}
	}
	return len(v.seen[path]), with
}

var statusPageRE = regexp.MustCompile(`status page serving.*?url"?[=:]"?http://([0-9.]+:[0-9]+)/`)

// apiCall sends a request to the processor's sites API and decodes the
// JSON answer.
func apiCall(t *testing.T, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("%s %s: %d with a body that is not JSON: %q", method, url, resp.StatusCode, data)
		}
	}
	return resp.StatusCode, out
}

// TestSitesChangedWhilePipelineRuns adds, edits and removes a site while
// two emitters (sharing the request partitions) and a processor run:
// first through the processor's sites API, then through the sites file
// and SIGHUP. Each time the new site is checked within its interval (plus
// the registry's way through Kafka), the edit moves its requests to the
// new interval's slots and its checks to the new headers, and once both
// emitters have rescheduled without it, no slot of it is requested
// again. On the same pipeline, an invalid site through the API gets a 400
// naming the field and changes nothing, and a garbage record on
// sitewatch_sites goes to dead letters while the emitters keep checking
// the site's last good version.
func TestSitesChangedWhilePipelineRuns(t *testing.T) {
	skipShort(t)
	const token = "fault-suite-token"
	e := newEnv(t)
	tg := newVersions(t)
	path := filepath.Join(t.TempDir(), "sites.yaml")
	// Background sites keep the emitters and the processor busy.
	background := "defaults: {interval: 1s, timeout: 900ms}\nsites:\n"
	for i := range 8 {
		background += fmt.Sprintf("  - {url: %s/bg/%d}\n", tg.url, i)
	}
	write := func(extra string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(background+extra), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	log, err := testkit.FollowSlots(e.addrs, map[string]string{string(topics.Requests): ""},
		[]string{string(topics.Succeeded), string(topics.Failed)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(log.Close)

	proc := startChild(t, "processor", bins.processor, e.processorArgs(e.db, "-http-addr", "127.0.0.1:0"), "SITEWATCH_API_TOKEN="+token)
	ems := []*child{
		e.startEmitter("em1", path, "-instance-id", "em1"),
		e.startEmitter("em2", path, "-instance-id", "em2"),
	}
	proc.waitLog(started, 90*time.Second)
	var api string
	waitFor(t, 60*time.Second, "the processor's status page address", func() (bool, string) {
		if m := statusPageRE.FindStringSubmatch(proc.logs.String()); m != nil {
			api = "http://" + m[1] + "/api/v1/sites"
			return true, ""
		}
		return false, ""
	})
	e.waitGroups(nil, 2, emitterGroups...)
	waitFor(t, 60*time.Second, "the background sites checked", func() (bool, string) {
		n, _ := tg.checks("/bg/7", "")
		return n > 0, ""
	})

	scheduled := func() []int {
		var out []int
		for _, em := range ems {
			out = append(out, strings.Count(em.logs.String(), `msg="sites scheduled"`))
		}
		return out
	}
	// rescheduled waits until each emitter logged more reschedules than
	// in before: both have read the registry's change.
	rescheduled := func(what string, before []int) time.Time {
		t.Helper()
		waitFor(t, 30*time.Second, "both emitters rescheduled after "+what, func() (bool, string) {
			now := scheduled()
			for i := range now {
				if now[i] <= before[i] {
					return false, fmt.Sprintf("reschedules %v, were %v", now, before)
				}
			}
			return true, ""
		})
		return time.Now()
	}
	// Reading the registry's change and rescheduling take a moment on a
	// loaded machine: the slack on top of the site's interval.
	const slack = 3 * time.Second
	// lifecycle proves one site's add, edit and remove; change makes
	// each step (API call or file and SIGHUP).
	lifecycle := func(how, url string, change func(step string)) {
		t.Helper()
		p := strings.TrimPrefix(url, tg.url)
		// Added at 2 s: checked within its interval.
		added := time.Now()
		change("add")
		waitFor(t, 30*time.Second, how+": the added site checked with X-Version 1", func() (bool, string) {
			_, with := tg.checks(p, "1")
			return with > 0, ""
		})
		if err := log.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		// From the slot in progress when the site was added: the emitter
		// requests a new site's current slot at once.
		first := log.FirstRequested("", []testkit.Site{{URL: url, Interval: 2 * time.Second}}, added.Add(-2*time.Second), time.Now())[url]
		t.Logf("%s: added site first requested for the slot at +%v (interval 2s)", how, first.Sub(added).Round(10*time.Millisecond))
		if first.IsZero() || first.Sub(added) > 2*time.Second+slack {
			t.Errorf("%s: the added site's first slot at +%v, want within its interval (2s) and %v", how, first.Sub(added), slack)
		}

		// Edited to 3 s and X-Version 2: the checks carry the new
		// header, the requests follow the 3 s slots, once each.
		before := scheduled()
		change("edit")
		edited := rescheduled(how+" edit", before)
		from := edited.Add(3 * time.Second)
		to := from.Add(9 * time.Second)
		time.Sleep(time.Until(to) + 2*time.Second)
		if err := log.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := log.RequestedSlots("", url, from, to)
		want := testkit.Site{URL: url, Interval: 3 * time.Second}.Slots(from, to)
		t.Logf("%s: after the edit, slots requested %v, want the 3s slots %v", how, fmtTimes(got), fmtTimes(want))
		if fmtTimes(got) != fmtTimes(want) {
			t.Errorf("%s: after the edit to 3s, slots requested %v, want %v", how, fmtTimes(got), fmtTimes(want))
		}
		for _, at := range got {
			if !scheduler.SlotStart(url, 3*time.Second, at).Equal(at) {
				t.Errorf("%s: slot %v requested after the edit is not a 3s slot", how, at.Format("15:04:05.000"))
			}
		}
		if tl := log.Tally("", []testkit.Site{{URL: url, Interval: 3 * time.Second}}, from, to); tl.Checked != tl.Slots || tl.Twice != 0 {
			t.Errorf("%s: after the edit: %s", how, tl)
		}
		if all, with := tg.checks(p, "2"); with == 0 {
			t.Errorf("%s: %d checks, none with the edited X-Version 2", how, all)
		}

		// Removed: once both emitters rescheduled, no slot requested.
		before = scheduled()
		change("remove")
		removed := rescheduled(how+" remove", before)
		time.Sleep(3*3*time.Second + 2*time.Second)
		if err := log.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		if after := log.RequestedSlots("", url, removed, time.Now()); len(after) > 0 {
			t.Errorf("%s: slots %v of the removed site requested after both emitters rescheduled", how, fmtTimes(after))
		}
		t.Logf("%s: removed; no slot requested in the %v after both emitters rescheduled", how, time.Since(removed).Round(time.Second))
	}

	// Through the API.
	apiURL := tg.url + "/api-site"
	var id string
	body := func(version, interval string) string {
		return fmt.Sprintf(`{"url": %q, "interval": %q, "timeout": "900ms", "headers": {"X-Version": %q}}`, apiURL, interval, version)
	}
	lifecycle("API", apiURL, func(step string) {
		switch step {
		case "add":
			code, got := apiCall(t, http.MethodPost, api, token, body("1", "2s"))
			if code != http.StatusCreated {
				t.Fatalf("POST: %d %v", code, got)
			}
			id, _ = got["id"].(string)
		case "edit":
			// An invalid site first: a 400 naming the field, nothing
			// written to the registry, the site unchanged.
			end := len(e.readAll(codecs.TopicSites))
			for _, tc := range []struct{ name, method, url, body, field string }{
				{"interval too short", http.MethodPut, api + "/" + id, body("3", "100ms"), "interval"},
				{"unknown field", http.MethodPost, api, `{"url": "https://new.example/", "intervall": "5s"}`, "intervall"},
				{"bad url", http.MethodPost, api, `{"url": "ftp://new.example/"}`, "url"},
			} {
				if code, got := apiCall(t, tc.method, tc.url, token, tc.body); code != http.StatusBadRequest || got["field"] != tc.field || got["error"] == "" {
					t.Errorf("%s: %d %v, want 400 naming field %q", tc.name, code, got, tc.field)
				}
			}
			if n := len(e.readAll(codecs.TopicSites)); n != end {
				t.Errorf("refused requests wrote to %s: %d records, then %d", codecs.TopicSites, end, n)
			}
			if code, got := apiCall(t, http.MethodGet, api+"/"+id, "", ""); code != http.StatusOK || got["interval"] != "2s" {
				t.Errorf("GET after refused requests: %d %v", code, got)
			}
			t.Logf("API: 3 invalid sites refused with 400 naming the field; %s unchanged (%d records)", codecs.TopicSites, end)
			if code, got := apiCall(t, http.MethodPut, api+"/"+id, token, body("2", "3s")); code != http.StatusOK {
				t.Fatalf("PUT: %d %v", code, got)
			}
		case "remove":
			// A garbage record for the site first: dead letters, and
			// the emitters keep checking its last good version.
			garbage(t, e, apiURL, strings.TrimPrefix(apiURL, tg.url), tg)
			if code, got := apiCall(t, http.MethodDelete, api+"/"+id, token, ""); code != http.StatusNoContent {
				t.Fatalf("DELETE: %d %v", code, got)
			}
		}
	})

	// Through the sites file and SIGHUP to both emitters.
	fileURL := tg.url + "/file-site"
	sighup := func() {
		t.Helper()
		for _, em := range ems {
			if err := em.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
		}
	}
	lifecycle("sites file", fileURL, func(step string) {
		switch step {
		case "add":
			write(fmt.Sprintf("  - {url: %s, interval: 2s, headers: {X-Version: \"1\"}}\n", fileURL))
		case "edit":
			write(fmt.Sprintf("  - {url: %s, interval: 3s, headers: {X-Version: \"2\"}}\n", fileURL))
		case "remove":
			write("")
		}
		sighup()
	})
	for _, em := range ems {
		if strings.Count(em.logs.String(), `msg="sites reloaded"`) < 3 {
			t.Errorf("%s logged %d reloads, want 3", em.name, strings.Count(em.logs.String(), `msg="sites reloaded"`))
		}
	}
	if n := log.Undecodable(); n > 0 {
		t.Errorf("%d undecodable records on the request and result topics", n)
	}
}

// garbage writes a record for url on sitewatch_sites that is not a valid
// site (an interval under the minimum), on the partition of the site's
// good record, and checks that the emitters dead-letter it and keep
// checking the site's last good version (X-Version 2).
func garbage(t *testing.T, e *env, url, path string, tg *versions) {
	t.Helper()
	var good *kafkaRecord
	for _, r := range e.readAll(codecs.TopicSites) {
		if string(r.key) == url {
			good = &r
		}
	}
	if good == nil {
		t.Fatalf("no record of %s on %s", url, codecs.TopicSites)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	value := []byte(`{"v":1,"url":"` + url + `","interval":"1ms","owner":"api"}`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: good.topic, Partition: good.partition, Key: good.key, Value: value}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var letters int
	waitFor(t, 30*time.Second, "the emitters' dead letters for the garbage site record", func() (bool, string) {
		n := 0
		for _, d := range e.deadLetters() {
			if d.Consumer == "emitter" && d.Topic == codecs.TopicSites && string(d.Key) == url && bytes.Equal(d.Value, value) &&
				strings.Contains(d.Reason, `interval: "1ms" is under the minimum of 1s`) {
				n++
			}
		}
		letters = n
		return n >= 1, fmt.Sprintf("%d dead letters from an emitter", n)
	})
	_, before := tg.checks(path, "2")
	all0, _ := tg.checks(path, "")
	waitFor(t, 30*time.Second, "the site checked twice more with its last good version", func() (bool, string) {
		all, with := tg.checks(path, "2")
		return with >= before+2 && all-all0 == with-before, fmt.Sprintf("%d checks, %d with X-Version 2", all-all0, with-before)
	})
	t.Logf("garbage record for %s: %d dead letter(s) from the emitters, the site still checked with its last good version", url, letters)
}

func fmtTimes(ts []time.Time) string {
	var out []string
	for _, at := range ts {
		out = append(out, at.Format("15:04:05.000"))
	}
	return "[" + strings.Join(out, " ") + "]"
}
