// Command fleet is the load program of a fleet of emitters (issue 12, "N
// emitters without N times the work"): N real emitters (cmd/emitter as
// child processes) in each of -regions check groups (one region each, its
// own requests topic and url_checker group) on one kfake cluster in this
// process, with 10,000 sites against a target in this process. Each
// emitter schedules only the sites of the request partitions it owns, so
// the requests produced per slot time should equal sites × regions,
// whatever N; checks are counted by the region their result carries.
//
// It prints, for a window of a stable group with N emitters and again
// after one of them was killed (SIGKILL) and the group rebalanced:
// requests produced per slot (and the ratio to sites × regions, the goal
// being 1.00; every emitter scheduling every site made it N), checks per
// slot, slots checked twice, slots not checked and requests skipped as
// stale (a machine too slow for the load skips slots, it does not check
// them twice); and the recovery after the kill: when the killed
// emitter's sites were requested and checked again. It never fails on
// time: figures only.
//
//	go run ./bench/fleet                       # 3 emitters, about 2 minutes
//	go run ./bench/fleet -emitters 5 -interval 10s
//	go run ./bench/fleet -regions 2            # 3 emitters in each of 2 regions
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sitewatch/sitewatch/bench/internal/benchkit"
	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/retry"
	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/kafkaconn"
	"github.com/sitewatch/sitewatch/processors/urlchecker"
)

func main() { os.Exit(run()) }

type options struct {
	sites      int
	emitters   int
	regions    int
	partitions int
	interval   time.Duration
	window     int
	kill       bool
	keep       bool
}

func run() int {
	var o options
	flag.IntVar(&o.sites, "sites", 10000, "sites")
	flag.IntVar(&o.emitters, "emitters", 3, "emitters per region")
	flag.IntVar(&o.regions, "regions", 1, "regions (each its own check group); more than 1 needs an emitter with -region")
	flag.IntVar(&o.partitions, "partitions", 12, "partitions of every topic")
	flag.DurationVar(&o.interval, "interval", 5*time.Second, "interval of every site")
	flag.IntVar(&o.window, "window", 4, "intervals measured per phase")
	flag.BoolVar(&o.kill, "kill", true, "kill one emitter (SIGKILL) and measure the recovery")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (sites file, child logs)")
	flag.Parse()
	if o.emitters < 1 || o.regions < 1 || o.sites < 1 {
		fmt.Fprintln(os.Stderr, "fleet: -sites, -emitters and -regions must be at least 1")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	if err := bench(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		return 1
	}
	return 0
}

// region is one check group: its name, requests topic and group.
type region struct {
	name, requests, group string
}

func regions(n int) []region {
	o := &kafkaconn.Options{}
	out := []region{{codecs.DefaultRegion, string(o.RegionRequests(codecs.DefaultRegion)), string(o.CheckerGroup(codecs.DefaultRegion))}}
	for i := 2; i <= n; i++ {
		name := fmt.Sprintf("r%d", i)
		out = append(out, region{name, string(o.RegionRequests(name)), string(o.CheckerGroup(name))})
	}
	return out
}

type emitter struct {
	id, region string
	child      *benchkit.Child
	metrics    string
}

func bench(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp("", "sitewatch-bench-fleet-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Println("work directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	bins, err := benchkit.Build(ctx, dir, "github.com/sitewatch/sitewatch/cmd/emitter")
	if err != nil {
		return err
	}
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer target.Close()
	regs := regions(o.regions)
	topics := (&kafkaconn.Options{}).Topics()
	var seed []string
	for _, s := range topics.All() {
		seed = append(seed, string(s))
	}
	reqTopics := map[string]string{}
	for _, r := range regs[1:] {
		seed = append(seed, r.requests)
	}
	for _, r := range regs {
		reqTopics[r.requests] = r.name
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(o.partitions), seed...))
	if err != nil {
		return fmt.Errorf("kfake: %w", err)
	}
	defer cluster.Close()
	addrs := cluster.ListenAddrs()

	var b strings.Builder
	fmt.Fprintf(&b, "defaults:\n  interval: %s\n  timeout: 1s\nsites:\n", o.interval)
	sites := make([]testkit.Site, o.sites)
	for i := range sites {
		sites[i] = testkit.Site{URL: fmt.Sprintf("%s/s/%d", target.URL, i), Interval: o.interval}
		fmt.Fprintf(&b, "  - url: %s\n", sites[i].URL)
	}
	path := filepath.Join(dir, "sites.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return err
	}
	// A check counts for the region its result carries.
	log, err := testkit.FollowSlots(addrs, reqTopics, []string{string(topics.Succeeded), string(topics.Failed)},
		func(r *codecs.Result) string { return r.Region })
	if err != nil {
		return err
	}
	defer log.Close()

	fmt.Printf("fleet benchmark: %s, NumCPU=%d; %d sites at %s, %d region(s) × %d emitters, %d partitions\n",
		runtime.Version(), runtime.NumCPU(), o.sites, o.interval, o.regions, o.emitters, o.partitions)
	var fleet []*emitter
	defer func() {
		for _, e := range fleet {
			if _, done := e.child.Exited(); !done {
				_ = e.child.Stop(30 * time.Second)
			}
		}
	}()
	for _, r := range regs {
		for i := range o.emitters {
			addr, err := benchkit.FreeAddr()
			if err != nil {
				return err
			}
			id := fmt.Sprintf("%s-em%d", r.name, i+1)
			args := []string{"-sites", path, "-brokers", testkit.JoinAddrs(addrs), "-metrics-addr", addr, "-log-level", "warn",
				"-topic-partitions", strconv.Itoa(o.partitions), "-instance-id", id}
			if r.name != "default" {
				args = append(args, "-region", r.name)
			}
			c, err := benchkit.Start(bins[0], args, filepath.Join(dir, id+".log"))
			if err != nil {
				return err
			}
			fleet = append(fleet, &emitter{id: id, region: r.name, child: c, metrics: "http://" + addr + "/metrics"})
		}
	}

	alive := slices.Clone(fleet)
	t0 := time.Now()
	if err := stable(ctx, cluster, regs, alive, o); err != nil {
		return err
	}
	fmt.Printf("\ngroups stable, every partition owned, %v after the start\n", time.Since(t0).Round(100*time.Millisecond))
	before, err := phase(ctx, log, regs, sites, alive, o, fmt.Sprintf("%d emitters per region", o.emitters))
	if err != nil {
		return err
	}
	if !o.kill || o.emitters < 2 {
		return nil
	}

	victim := alive[1]
	var parts []int32
	if gi := cluster.GroupInfo(regs[0].group); gi != nil {
		for _, m := range gi.Members {
			if strings.Contains(m.MemberID, "-"+victim.id+"-") {
				parts = m.Assignment[regs[0].requests]
			}
		}
	}
	var mine []testkit.Site
	for _, s := range sites {
		if slices.Contains(parts, urlchecker.RequestPartition(s.URL, int32(o.partitions))) {
			mine = append(mine, s)
		}
	}
	if err := victim.child.StopWith(syscall.SIGKILL, 10*time.Second); err != nil && !isKilled(err) {
		return fmt.Errorf("kill %s: %w", victim.id, err)
	}
	killed := time.Now()
	alive = slices.DeleteFunc(alive, func(e *emitter) bool { return e == victim })
	var rebalanced time.Time
	var requested, checked map[string]time.Time
	for {
		if gi := cluster.GroupInfo(regs[0].group); rebalanced.IsZero() && gi != nil && gi.State == "Stable" && len(gi.Members) == o.emitters-1 {
			rebalanced = time.Now()
		}
		requested = log.FirstRequested(regs[0].name, mine, killed, time.Now())
		checked = log.FirstChecked(regs[0].name, victim.id, mine, killed, time.Now())
		if len(requested) == len(mine) && len(checked) == len(mine) {
			break
		}
		if time.Since(killed) > 3*time.Minute {
			fmt.Printf("  after 3 minutes, %d of %d sites requested again, %d checked again\n", len(requested), len(mine), len(checked))
			break
		}
		if !retry.Sleep(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
	latest := func(m map[string]time.Time) time.Duration {
		var d time.Duration
		for _, at := range m {
			d = max(d, at.Sub(killed))
		}
		return d
	}
	fmt.Printf("\nkilled %s (SIGKILL), owning partitions %v of region %s (%d sites)\n", victim.id, parts, victim.region, len(mine))
	fmt.Printf("  group rebalanced without it     : %v after the kill (session timeout 10 s + heartbeat 3 s + rebalance)\n", rebalanced.Sub(killed).Round(10*time.Millisecond))
	fmt.Printf("  its sites requested again (all) : %v after the kill, %v after the rebalance (goal ≤ one interval, %v)\n",
		latest(requested).Round(10*time.Millisecond), killed.Add(latest(requested)).Sub(rebalanced).Round(10*time.Millisecond), o.interval)
	fmt.Printf("  its sites checked again (all)   : %v after the kill\n", latest(checked).Round(10*time.Millisecond))

	if err := stable(ctx, cluster, regs, alive, o); err != nil {
		return err
	}
	after, err := phase(ctx, log, regs, sites, alive, o, fmt.Sprintf("%d emitters in region default after the kill", o.emitters-1))
	if err != nil {
		return err
	}
	fmt.Printf("\nsummary: requests per slot / (sites × regions) = %.3f with %d emitters per region, %.3f with %d in region default (goal 1.00; every emitter scheduling every site: %d.00 and %d.00); "+
		"checks per slot %.3f and %.3f; duplicates %d and %d; recovery after the kill %v (requests), %v (checks)\n",
		before.perSlot, o.emitters, after.perSlot, o.emitters-1, o.emitters, o.emitters-1,
		before.checksPerSlot, after.checksPerSlot, before.twice, after.twice,
		latest(requested).Round(10*time.Millisecond), latest(checked).Round(10*time.Millisecond))
	return nil
}

func isKilled(err error) bool {
	var ee interface{ ExitCode() int }
	return errors.As(err, &ee) && ee.ExitCode() == -1
}

// stable waits until every region's group is stable with its emitters and
// they own every partition and schedule every site between them.
func stable(ctx context.Context, cluster *kfake.Cluster, regs []region, alive []*emitter, o options) error {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		ok, why := true, ""
		for _, r := range regs {
			var members []*emitter
			for _, e := range alive {
				if e.region == r.name {
					members = append(members, e)
				}
			}
			gi := cluster.GroupInfo(r.group)
			if gi == nil || gi.State != "Stable" || len(gi.Members) != len(members) {
				ok, why = false, "group "+r.group+" not stable"
				break
			}
			var owned, scheduled float64
			for _, e := range members {
				m, err := benchkit.Scrape(e.metrics, "sitewatch_schedule_owned_partitions", "sitewatch_schedule_sites")
				if err != nil {
					ok, why = false, err.Error()
					break
				}
				owned += m["sitewatch_schedule_owned_partitions"]
				scheduled += m["sitewatch_schedule_sites"]
			}
			if owned != float64(o.partitions) || scheduled != float64(o.sites) {
				ok, why = false, fmt.Sprintf("region %s: %v partitions owned, %v sites scheduled", r.name, owned, scheduled)
			}
		}
		if ok {
			return nil
		}
		for _, e := range alive {
			if err, done := e.child.Exited(); done {
				return fmt.Errorf("%s exited: %v\n%s", e.id, err, e.child.Tail())
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("fleet not stable after 5 minutes: %s", why)
		}
		if !retry.Sleep(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// figures are one phase's totals over the regions.
type figures struct {
	perSlot       float64 // requests per slot over sites × regions
	perSlotTime   float64 // requests per interval
	checksPerSlot float64
	twice         int // checks beyond the first of a slot
	notChecked    int
}

// phase measures o.window intervals of a stable fleet and prints the
// figures, per region and in all.
func phase(ctx context.Context, log *testkit.SlotLog, regs []region, sites []testkit.Site, alive []*emitter, o options, what string) (figures, error) {
	staleOf := func() float64 {
		var n float64
		for _, e := range alive {
			m, err := benchkit.Scrape(e.metrics, "sitewatch_requests_stale_total")
			if err == nil {
				n += m["sitewatch_requests_stale_total"]
			}
		}
		return n
	}
	stale0 := staleOf()
	from := time.Now().Add(o.interval)
	to := from.Add(time.Duration(o.window) * o.interval)
	if !retry.Sleep(ctx, time.Until(to)+2*o.interval) {
		return figures{}, ctx.Err()
	}
	// The broker, the target and the follower share this process: on a
	// starved machine reading up to the end takes a while.
	synced := time.Now()
	sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := log.Sync(sctx); err != nil {
		return figures{}, err
	}
	if d := time.Since(synced); d > o.interval {
		fmt.Printf("  (the request and result topics read up to their end %v after the window: the machine is short of CPU)\n", d.Round(100*time.Millisecond))
	}
	stale := staleOf() - stale0
	fmt.Printf("\n%s, %d intervals of a stable group:\n", what, o.window)
	var requests, slots, checks int
	var f figures
	for _, r := range regs {
		tl := log.Tally(r.name, sites, from, to)
		requests += tl.Requests
		slots += tl.Slots
		checks += tl.Checks
		f.twice += tl.Twice
		f.notChecked += tl.Slots - tl.Checked
		fmt.Printf("  region %-8s: %d slots, %d requests = %.3f per slot; %d checks = %.3f per slot; %d slots checked twice, %d not checked (%d requests skipped as stale), %d checks late\n",
			r.name, tl.Slots, tl.Requests, tl.RequestsPerSlot(), tl.Checks, tl.ChecksPerSlot(), tl.Twice, tl.Slots-tl.Checked, int(stale), tl.Late)
	}
	f.perSlot = float64(requests) / float64(max(slots, 1))
	f.checksPerSlot = float64(checks) / float64(max(slots, 1))
	f.perSlotTime = float64(requests) / float64(o.window)
	fmt.Printf("  requests per slot time = %.1f vs sites × regions = %d: ratio %.3f (goal 1.00); checks per slot %.3f; %d slots checked twice, %d not checked\n",
		f.perSlotTime, o.sites*len(regs), f.perSlot, f.checksPerSlot, f.twice, f.notChecked)
	return f, nil
}
