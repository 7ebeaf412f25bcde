package faults

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/testkit"
)

// TestNoSecretInLogsErrorsOrMetrics runs the emitter and the processor
// with a SASL password (kfake with SCRAM) and a password in the database
// URL, at debug level, through a database outage, and also with a wrong
// SASL password and an unreachable database: no output of any of them,
// no /metrics page and no /healthz answer may contain a secret.
func TestNoSecretInLogsErrorsOrMetrics(t *testing.T) {
	skipShort(t)
	const (
		kafkaUser     = "sitewatch"
		kafkaPassword = "kafka-Secret-8f3a1c"
		wrongPassword = "wrong-Secret-77d0e2"
		dbPassword    = "db-Secret-5b9e44"
	)
	secrets := []string{kafkaPassword, wrongPassword, dbPassword, url.QueryEscape(dbPassword)}
	c, addrs := testkit.Kafka(t, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", kafkaUser, kafkaPassword),
		kfake.SeedTopics(partitions, allTopics()...))
	logGroupsOnFailure(t, c)
	e := &env{t: t, cluster: c, addrs: addrs, db: testkit.Postgres(t)}
	db := e.connect()
	proxy, dbURL := e.viaProxy()
	u, _ := url.Parse(dbURL)
	u.User = url.UserPassword(u.User.Username(), dbPassword)
	dbURL = u.String()

	sasl := []string{"-kafka-sasl-mechanism", "SCRAM-SHA-256", "-kafka-sasl-user", kafkaUser, "-log-level", "debug"}
	st := newSites(t, 4, "")
	var all []*child
	em := startChild(t, "emitter", bins.emitter, e.emitterArgs(st.path, sasl...), "KAFKA_SASL_PASSWORD="+kafkaPassword)
	proc := startChild(t, "processor", bins.processor, e.processorArgs(dbURL, sasl...), "KAFKA_SASL_PASSWORD="+kafkaPassword)
	all = append(all, em, proc)
	waitFor(t, 90*time.Second, "results stored through SASL and the proxy", func() (bool, string) {
		return testkit.StoredRows(db) >= 8, fmt.Sprintf("%d rows", testkit.StoredRows(db))
	})
	proxy.Cut(3 * time.Second)
	time.Sleep(4 * time.Second)
	before := testkit.StoredRows(db)
	waitFor(t, 60*time.Second, "rows stored after the database came back", func() (bool, string) {
		return testkit.StoredRows(db) > before, ""
	})
	var pages []string
	for _, ch := range []*child{em, proc} {
		page, err := ch.scrape()
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, page)
		health, err := get(strings.TrimSuffix(ch.metricsURL(), "/metrics") + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, health)
	}
	if !strings.Contains(proc.logs.String(), "store write failed, retrying") {
		t.Errorf("the processor logged no failed write during the outage; the secret check saw no database error")
	}

	// A wrong Kafka password and an unreachable database: errors that
	// could quote a secret.
	badKafka := startChild(t, "processor (wrong SASL password)", bins.processor, e.processorArgs(dbURL, sasl...), "KAFKA_SASL_PASSWORD="+wrongPassword)
	badEmitter := startChild(t, "emitter (wrong SASL password)", bins.emitter, e.emitterArgs(st.path, sasl...), "KAFKA_SASL_PASSWORD="+wrongPassword)
	unreachable := "postgres://sitewatch:" + dbPassword + "@127.0.0.1:1/sitewatch?sslmode=disable"
	badDB := startChild(t, "processor (unreachable database)", bins.processor, e.processorArgs(unreachable, sasl...), "KAFKA_SASL_PASSWORD="+kafkaPassword)
	all = append(all, badKafka, badEmitter, badDB)
	for _, ch := range all[2:] {
		select {
		case <-ch.done:
		case <-time.After(60 * time.Second):
			t.Fatalf("%s did not exit", ch.name)
		}
		if ch.code != 1 {
			t.Errorf("%s: exit status %d, want 1", ch.name, ch.code)
		}
		t.Logf("%s: %s", ch.name, clip(lastLine(ch.logs.String()), 400))
	}
	if !strings.Contains(lastLine(badKafka.logs.String()), "SASL") {
		t.Errorf("the wrong SASL password is not reported as such: %s", lastLine(badKafka.logs.String()))
	}
	if !strings.Contains(lastLine(badDB.logs.String()), "127.0.0.1:1") {
		t.Errorf("the unreachable database is not named: %s", lastLine(badDB.logs.String()))
	}
	for _, code := range []int{em.stop(60 * time.Second), proc.stop(60 * time.Second)} {
		if code != 0 {
			t.Errorf("exit status %d after SIGTERM, want 0", code)
		}
	}
	scanned := 0
	for _, ch := range all {
		pages = append(pages, ch.logs.String())
	}
	for i, text := range pages {
		scanned += len(text)
		for _, s := range secrets {
			if strings.Contains(text, s) {
				idx := strings.Index(text, s)
				t.Errorf("secret %q found in output %d: …%s…", s, i, clip(text[max(0, idx-200):], 400))
			}
		}
	}
	record(t, figure{fault: "secrets: SASL + DSN password, outage, bad creds", injected: 4, produced: testkit.StoredRows(db), stored: testkit.StoredRows(db),
		note: fmt.Sprintf("%d KiB of logs, /metrics and /healthz scanned: no secret", scanned>>10)})
}

func get(u string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// TestDenyPrivateTargets: with -deny-private-targets, a site on loopback
// is never contacted; its results are down with error_kind connect and a
// message naming the flag.
func TestDenyPrivateTargets(t *testing.T) {
	skipShort(t)
	e := newEnv(t)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	st := &sites{path: filepath.Join(t.TempDir(), "sites.yaml"), urls: []string{srv.URL + "/"}}
	st.write(t, st.urls, "")
	em := e.startEmitter("emitter", st.path, "-deny-private-targets")
	var res []*codecs.Result
	waitFor(t, 60*time.Second, "results for the loopback site", func() (bool, string) {
		produced, _ := e.producedResults()
		res = res[:0]
		for _, r := range produced {
			res = append(res, r)
		}
		return len(res) >= 2, fmt.Sprintf("%d results", len(res))
	})
	for _, r := range res {
		msg := ""
		if r.ErrorMessage != nil {
			msg = *r.ErrorMessage
		}
		if r.Outcome != codecs.OutcomeDown || r.ErrorKind == nil || *r.ErrorKind != codecs.ErrConnect || !strings.Contains(msg, "deny-private-targets") {
			t.Errorf("result for a loopback site under -deny-private-targets: outcome %s, error_kind %v, message %q; want down, connect, mentioning deny-private-targets",
				r.Outcome, r.ErrorKind, msg)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the loopback site was contacted %d times", n)
	}
	record(t, figure{fault: "-deny-private-targets, loopback site", injected: len(res), produced: len(res), stored: len(res),
		note: fmt.Sprintf("all down/connect naming the flag; %d requests reached the site", hits.Load())})
	if code := em.stop(60 * time.Second); code != 0 {
		t.Errorf("emitter exit status %d after SIGTERM, want 0", code)
	}
}
