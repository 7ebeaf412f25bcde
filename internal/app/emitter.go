package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/sitewatch/sitewatch/checker"
	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/config"
	"github.com/sitewatch/sitewatch/kafkaconn"
	"github.com/sitewatch/sitewatch/processors/urlchecker"
	"github.com/sitewatch/sitewatch/registry"
	"github.com/sitewatch/sitewatch/scheduler"
	"github.com/sitewatch/sitewatch/telemetry"
)

// EmitterFlags are the emitter's own flags.
type EmitterFlags struct {
	Sites              string
	Concurrency        int
	Buffer             int
	InstanceID         string
	BodyLimit          int64
	DenyPrivateTargets bool
	Region             string
}

// RegisterEmitter declares the emitter's flags on fs.
func RegisterEmitter(fs *flag.FlagSet) *EmitterFlags {
	f := &EmitterFlags{}
	fs.StringVar(&f.Sites, "sites", os.Getenv("SITEWATCH_SITES"), "sites file (YAML), published to the sites registry at start and on SIGHUP; without it the emitter checks the registry's sites (env SITEWATCH_SITES)")
	fs.IntVar(&f.Concurrency, "concurrency", 1000, "most checks running at once")
	fs.IntVar(&f.Buffer, "buffer", urlchecker.DefaultBuffer, "most results (and requests) held while Kafka is unreachable; beyond it the oldest are dropped and counted")
	fs.StringVar(&f.InstanceID, "instance-id", os.Getenv("SITEWATCH_INSTANCE_ID"), "name of this emitter in results' checker field (default host-pid) (env SITEWATCH_INSTANCE_ID)")
	fs.Int64Var(&f.BodyLimit, "body-limit", checker.DefaultBodyLimit, "most bytes of a body read per check; a larger body is down (body_too_large)")
	fs.BoolVar(&f.DenyPrivateTargets, "deny-private-targets", false, "refuse to check sites that resolve to loopback, private or link-local addresses")
	fs.StringVar(&f.Region, "region", envOr("SITEWATCH_REGION", codecs.DefaultRegion), "region of this emitter: its own check group, every site checked once per slot per region; 1-32 characters of a-z, 0-9 and - (env SITEWATCH_REGION)")
	return f
}

// CheckRegion refuses a bad -region as a usage error.
func (f *EmitterFlags) CheckRegion() error {
	if err := codecs.CheckRegion(f.Region); err != nil {
		return Usagef("-region: %v", err)
	}
	return nil
}

// Env is what every component of a process shares: the logger, the metrics
// registry and the health report.
type Env struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry
	Health   *telemetry.Health
	// OutageAfter is how long a store or Kafka delivery must fail before
	// Health reports it (-unhealthy-after); telemetry.DefaultOutageAfter
	// when zero.
	OutageAfter time.Duration
}

// LoadSites loads the sites file, reporting a bad file as a usage error.
func LoadSites(path string) (*config.File, error) {
	if path == "" {
		return nil, Usagef("-sites: no sites file given (or set SITEWATCH_SITES)")
	}
	f, err := config.Load(path)
	if err != nil {
		return nil, &UsageError{err}
	}
	return f, nil
}

// RunEmitter runs the scheduler and the url_checker group until ctx ends,
// then drains: scheduling stops, in-flight checks finish or time out, and
// the producers flush. The scheduler checks the sites of the registry
// (sitewatch_sites), followed live. With -sites, the file's sites are
// published to the registry at start and on every SIGHUP; a bad file is
// refused at start (usage error) and logged on SIGHUP, the registry then
// keeping the previous sites.
func RunEmitter(ctx context.Context, env Env, k *kafkaconn.Options, f *EmitterFlags) error {
	// Claim SIGHUP first: its default action would kill a process that is
	// still connecting when an operator reloads it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var sites *config.File
	if f.Sites != "" {
		var err error
		if sites, err = LoadSites(f.Sites); err != nil {
			return err
		}
	}
	if f.Concurrency < 1 {
		return Usagef("-concurrency: must be at least 1")
	}
	if err := f.CheckRegion(); err != nil {
		return err
	}
	saramaCfg, err := k.Sarama()
	if err != nil {
		return &UsageError{err}
	}
	topics := k.Topics()
	// This region's requests topic and checker group (the default region's
	// are the names from before regions).
	topics.Requests = k.RegionRequests(f.Region)
	log := env.Logger.With("component", "emitter", "region", f.Region)
	// The url_checker reports on its own once it is built.
	env.Health.Set("emitter", errors.New("starting: connecting to kafka"))
	if err := k.EnsureTopics(ctx, saramaCfg, log, topics.All()...); err != nil {
		return err
	}
	if err := k.EnsureSitesTopic(ctx, saramaCfg, log); err != nil {
		return err
	}

	// The scheduler sheds slots while the requests not yet checked pile
	// up: the request producer and the url_checker tell it the offsets
	// they reach.
	admission := new(scheduler.Admission)
	requests, err := urlchecker.NewRequestEmitter(urlchecker.RequestEmitterConfig{
		Brokers: k.Brokers, Sarama: saramaCfg, Topic: topics.Requests, Buffer: f.Buffer, Stored: admission.Produced,
		Logger: log, Registerer: env.Registry, Health: env.Health.Part("request_emitter"), OutageAfter: env.OutageAfter,
	})
	if err != nil {
		return fmt.Errorf("request emitter: %w", err)
	}
	// The scheduler schedules only the sites of the request partitions
	// this emitter's url_checker owns: nothing until the group assigns it
	// some.
	meta, err := metadataClient(k.Brokers, saramaCfg)
	if err != nil {
		return err
	}
	defer meta.Close()
	share, err := newShareKeeper(meta, string(topics.Requests), log, env.Health.Part("scheduler"))
	if err != nil {
		return err
	}
	admission.SetBuffered(requests.Buffered)
	sched, err := scheduler.New(nil, scheduler.Options{
		Emit: requests.Emit, Logger: log, Registerer: env.Registry, Region: f.Region, Share: share.initial(),
		Admission: admission,
	})
	if err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	share.sched = sched
	warned := map[string]bool{}
	reg, err := registry.New(registry.Config{
		Brokers: k.Brokers, Sarama: saramaCfg, Topic: string(topics.Sites), DeadLetters: string(topics.DeadLetters),
		Consumer: "emitter", Logger: log,
		// Called from the registry's one goroutine: warned needs no lock.
		OnChange: func(entries []registry.Entry) {
			sites := registry.SitesOf(entries)
			if err := sched.Replace(sites); err != nil {
				log.Error("registry sites refused by the scheduler; keeping the previous sites", "err", err)
				return
			}
			warnInsecureTLS(log, sites, warned)
		},
	})
	if err != nil {
		return err
	}
	defer reg.Close()
	chk := checker.New(checker.Options{BodyLimit: f.BodyLimit, DenyPrivateTargets: f.DenyPrivateTargets})
	proc, err := urlchecker.New(urlchecker.Config{
		Brokers: k.Brokers, Sarama: saramaCfg, TopicManager: k.TopicManagerConfig(),
		Topics: urlchecker.Topics{Requests: topics.Requests, Succeeded: topics.Succeeded, Failed: topics.Failed, DeadLetters: topics.DeadLetters},
		Group:  k.CheckerGroup(f.Region), Region: f.Region,
		Concurrency: f.Concurrency, Buffer: f.Buffer, InstanceID: f.InstanceID,
		Checker: chk, Logger: log, Registerer: env.Registry, Health: env.Health.Part("url_checker"), OutageAfter: env.OutageAfter,
		Assigned: func(parts []int32, member bool) {
			admission.Assigned(parts)
			share.assigned(parts, member)
		},
		Taken: admission.Taken,
	})
	if err != nil {
		return fmt.Errorf("url_checker: %w", err)
	}
	env.Health.Set("emitter", nil)
	log.Info("emitter starting", "file", f.Sites, "brokers", k.Brokers, "concurrency", f.Concurrency)

	// Shutdown order: the scheduler stops first, then the request emitter
	// flushes what the scheduler handed it, while the url_checker drains
	// its in-flight checks. A part failing on its own ends the others too.
	g, gctx := errgroup.WithContext(ctx)
	reqCtx, stopRequests := context.WithCancel(context.Background())
	defer stopRequests()
	g.Go(func() error {
		defer stopRequests()
		return sched.Run(gctx)
	})
	g.Go(func() error { return requests.Run(reqCtx) })
	g.Go(func() error { return proc.Run(gctx) })
	g.Go(func() error { return share.run(gctx) })
	reloads, err := telemetry.NewReloads(env.Registry, time.Now())
	if err != nil {
		return err
	}
	g.Go(func() error { return reg.Run(gctx) })
	// Not ready until the registry is read: before that the emitter checks
	// nothing, or only part of the sites.
	env.Health.Set("sites_registry", errors.New("reading the sites registry"))
	go func() {
		select {
		case <-reg.Ready():
			env.Health.Set("sites_registry", nil)
		case <-gctx.Done():
		}
	}()
	g.Go(func() error {
		if sites == nil {
			return nil
		}
		if err := publishFile(gctx, log, reg, sites, "sites file published"); err != nil {
			return err
		}
		publishOnHUP(gctx, log, hup, f.Sites, reg, reloads)
		return nil
	})
	err = g.Wait()
	log.Info("emitter stopped")
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// warnInsecureTLS says, once per site (warned holds those already named),
// which sites are checked without verifying their certificates: a setting
// easy to leave in by mistake.
func warnInsecureTLS(log *slog.Logger, sites []config.Site, warned map[string]bool) {
	for _, s := range sites {
		if s.TLS != nil && s.TLS.InsecureSkipVerify && !warned[s.URL] {
			warned[s.URL] = true
			log.Warn("site checked without verifying its TLS certificate (tls.insecure_skip_verify: true)",
				"site", s.URL, "line", s.Line)
		}
	}
}

// publishFile publishes a sites file to the registry and logs msg with what
// changed. It returns once the registry has read the changes back, so the
// scheduler has them.
func publishFile(ctx context.Context, log *slog.Logger, reg *registry.Registry, f *config.File, msg string) error {
	res, err := reg.SyncFile(ctx, f)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("publish %s: %w", f.Path, err)
	}
	for _, url := range res.Skipped {
		log.Warn("site of the sites file not published: another owner has it (remove it there first)", "file", f.Path, "url", url)
	}
	log.Info(msg, "file", f.Path, "sites", len(f.Sites),
		"published", res.Published, "removed", res.Removed, "unchanged", res.Unchanged, "skipped", len(res.Skipped))
	return nil
}

// publishOnHUP publishes the sites file again on every SIGHUP. A file with
// an error is refused whole: the registry keeps the previous sites.
func publishOnHUP(ctx context.Context, log *slog.Logger, hup <-chan os.Signal, path string, reg *registry.Registry, reloads *telemetry.Reloads) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		f, err := config.Load(path)
		if err == nil {
			// A failed write is logged; the next SIGHUP tries again.
			err = publishFile(ctx, log, reg, f, "sites reloaded")
		}
		reloads.Record(time.Now(), err)
		if err != nil {
			log.Error("sites reload refused; keeping the previous sites", "file", path, "err", err)
		}
	}
}
