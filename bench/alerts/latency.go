package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sitewatch/sitewatch/bench/internal/benchkit"
	"github.com/sitewatch/sitewatch/codecs"
)

// latency is the live figure: the real cmd/emitter checks o.liveSites
// sites on a loopback target every o.liveInterval, the real cmd/processor
// runs the alerts and the notifications (-run alerts,notify) with a
// webhook receiver in this process, and batches of sites go down and come
// back on command. For each change it takes the time from the crossing
// check's checked_at (the change's changed_at) to the receiver's receipt.
func latency(ctx context.Context, o options, log *slog.Logger) error {
	dir, err := os.MkdirTemp("", "sitewatch-bench-alerts-live-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bins, err := benchkit.Build(ctx, dir, "github.com/sitewatch/sitewatch/cmd/emitter", "github.com/sitewatch/sitewatch/cmd/processor")
	if err != nil {
		return err
	}

	down := make([]atomic.Bool, o.liveSites)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, err := strconv.Atoi(r.URL.Query().Get("i"))
		if err != nil || i < 0 || i >= len(down) {
			http.NotFound(w, r)
			return
		}
		if down[i].Load() {
			http.Error(w, "down on command", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer target.Close()
	urlOf := func(i int) string { return fmt.Sprintf("%s/s?i=%d", target.URL, i) }

	rec := newReceiver()
	hook := httptest.NewServer(rec)
	defer hook.Close()

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(o.partitions))
	if err != nil {
		return fmt.Errorf("start kfake: %w", err)
	}
	defer cluster.Close()
	if _, err := newKafka(ctx, cluster.ListenAddrs(), o.partitions, log); err != nil {
		return err
	}
	brokers := strings.Join(cluster.ListenAddrs(), ",")

	var sb strings.Builder
	fmt.Fprintf(&sb, "defaults:\n  interval: %s\n  timeout: 1s\nsites:\n", o.liveInterval)
	for i := range o.liveSites {
		fmt.Fprintf(&sb, "  - url: %s\n", urlOf(i))
	}
	sites := filepath.Join(dir, "sites.yaml")
	if err := os.WriteFile(sites, []byte(sb.String()), 0o644); err != nil {
		return err
	}
	metricsAddr, err := benchkit.FreeAddr()
	if err != nil {
		return err
	}
	proc, err := benchkit.Start(bins[1], []string{"-brokers", brokers, "-run", "alerts,notify", "-alert-webhook", hook.URL,
		"-metrics-addr", metricsAddr, "-log-level", "warn"}, filepath.Join(dir, "processor.log"))
	if err != nil {
		return err
	}
	defer proc.Stop(30 * time.Second)
	em, err := benchkit.Start(bins[0], []string{"-sites", sites, "-brokers", brokers, "-log-level", "warn"}, filepath.Join(dir, "emitter.log"))
	if err != nil {
		return err
	}
	defer em.Stop(30 * time.Second)

	// Warm-up: every site's first checks set its state (up, silently).
	consumed := func() float64 {
		m, _ := benchkit.Scrape("http://"+metricsAddr+"/metrics", "sitewatch_alerts_events_consumed_total")
		return m["sitewatch_alerts_events_consumed_total"]
	}
	warm := time.Now().Add(2 * time.Minute)
	for consumed() < float64(3*o.liveSites) {
		if time.Now().After(warm) {
			return fmt.Errorf("warm-up: %v of %d events consumed after 2 minutes\nprocessor:\n%s\nemitter:\n%s", consumed(), 3*o.liveSites, proc.Tail(), em.Tail())
		}
		for _, c := range []*benchkit.Child{proc, em} {
			if _, done := c.Exited(); done {
				return fmt.Errorf("%s exited:\n%s", c.Cmd.Path, c.Tail())
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Printf("\nlive alert latency (%d sites checked every %s by cmd/emitter; cmd/processor -run alerts,notify; a webhook receiver here; %d rounds of %d sites down, then up):\n",
		o.liveSites, o.liveInterval, o.liveRounds, o.liveBatch)
	startedAt := time.Now()
	var lat []time.Duration
	missing := 0
	for round := range o.liveRounds {
		batch := make([]string, 0, o.liveBatch)
		downs, ups := rec.counts(codecs.ChangeDown), rec.counts(codecs.ChangeUp)
		for k := range o.liveBatch {
			i := (round*o.liveBatch + k) % o.liveSites
			batch = append(batch, urlOf(i))
			down[i].Store(true)
		}
		// Failures consecutive checks at the interval, then the hold-back
		// and the delivery: a minute is far more than enough.
		missing += rec.await(ctx, codecs.ChangeDown, batch, downs, time.Minute)
		for k := range o.liveBatch {
			down[(round*o.liveBatch+k)%o.liveSites].Store(false)
		}
		missing += rec.await(ctx, codecs.ChangeUp, batch, ups, time.Minute)
	}
	took := time.Since(startedAt)
	// Late copies and stray changes have a moment to arrive.
	time.Sleep(2 * time.Second)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	byKind := map[string][]time.Duration{}
	for _, d := range rec.first {
		lat = append(lat, d.latency)
		byKind[d.kind] = append(byKind[d.kind], d.latency)
	}
	slices.Sort(lat)
	due := 2 * o.liveRounds * o.liveBatch
	fmt.Printf("  changes due %d, received %d distinct (%d requests, %d copies with the same Idempotency-Key), %d missing after a minute each, %d unexpected\n",
		due, len(rec.first), rec.requests, rec.requests-len(rec.first), missing, len(rec.first)-(due-missing))
	if len(lat) > 0 {
		fmt.Printf("  latency from the crossing check's checked_at to the receipt: p50 %s  p99 %s  max %s (over %s)\n",
			pct(lat, 50), pct(lat, 99), lat[len(lat)-1].Round(time.Millisecond), took.Round(time.Second))
		for _, kind := range []string{codecs.ChangeDown, codecs.ChangeUp} {
			l := byKind[kind]
			if len(l) == 0 {
				continue
			}
			slices.Sort(l)
			fmt.Printf("    %-4s changes: p50 %s  p99 %s  max %s\n", kind, pct(l, 50), pct(l, 99), l[len(l)-1].Round(time.Millisecond))
		}
		fmt.Println("    (an up change waits quietFor, 5 s, when no other site of its partition fails meanwhile: see processors/alerts/order.go)")
	}
	return nil
}

func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[max(0, min(len(sorted)-1, i-1))].Round(time.Millisecond)
}

// receiver is the webhook receiver: it records the first receipt of each
// change_id.
type receiver struct {
	mu       sync.Mutex
	first    map[string]receipt
	requests int
	arrived  chan struct{}
}

type receipt struct {
	kind, url string
	latency   time.Duration
}

func newReceiver() *receiver {
	return &receiver{first: map[string]receipt{}, arrived: make(chan struct{}, 1)}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c, err := codecs.DecodeStatusChange(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.requests++
	if _, ok := rc.first[c.ChangeID]; !ok {
		rc.first[c.ChangeID] = receipt{kind: c.Kind, url: c.URL, latency: at.Sub(c.ChangedAt)}
	}
	rc.mu.Unlock()
	select {
	case rc.arrived <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusNoContent)
}

// counts returns how many distinct changes of kind each URL had.
func (rc *receiver) counts(kind string) map[string]int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	got := map[string]int{}
	for _, r := range rc.first {
		if r.kind == kind {
			got[r.url]++
		}
	}
	return got
}

// await waits until a change of kind arrived for every url beyond the
// counts in before, or limit passes, and returns how many are missing.
func (rc *receiver) await(ctx context.Context, kind string, urls []string, before map[string]int, limit time.Duration) int {
	deadline := time.After(limit)
	for {
		got := rc.counts(kind)
		missing := 0
		for _, u := range urls {
			if got[u] <= before[u] {
				missing++
			}
		}
		if missing == 0 {
			return 0
		}
		select {
		case <-rc.arrived:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			return missing
		case <-ctx.Done():
			return missing
		}
	}
}
