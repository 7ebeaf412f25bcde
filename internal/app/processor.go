package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sitewatch/sitewatch/config"
	"github.com/sitewatch/sitewatch/kafkaconn"
	"github.com/sitewatch/sitewatch/processors/alerts"
	"github.com/sitewatch/sitewatch/processors/windows"
	"github.com/sitewatch/sitewatch/registry"
	sla "github.com/sitewatch/sitewatch/report"
	"github.com/sitewatch/sitewatch/sinks"
	"github.com/sitewatch/sitewatch/sinks/notify"
	"github.com/sitewatch/sitewatch/sinks/postgres"
	"github.com/sitewatch/sitewatch/sinks/sqlite"
	"github.com/sitewatch/sitewatch/sitesapi"
	"github.com/sitewatch/sitewatch/web"
)

// Processor components selectable with -run.
const (
	PartWindows       = "windows"
	PartSinkResults   = "sink-results"
	PartSinkWindows   = "sink-windows"
	PartAlerts        = "alerts"
	PartSinkIncidents = "sink-incidents"
	// PartNotify sends status_changes to the -alert-webhook and
	// -alert-slack-webhook destinations; with none it does nothing.
	PartNotify = "notify"
	// PartWeb serves the status page, badges and API on -http-addr.
	PartWeb = "web"
)

// defaultRun is -run's default. With it, a given -http-addr adds the web
// part; an explicit -run lists web itself.
var defaultRun = strings.Join(slices.DeleteFunc(slices.Clone(allParts), func(p string) bool { return p == PartWeb }), ",")

// processorFetchBytes is the processor's sarama Consumer.Fetch.Default
// (see RunProcessor).
const processorFetchBytes = 256 << 10

// Environment variables of the notify part.
const (
	EnvAlertWebhooks      = "SITEWATCH_ALERT_WEBHOOKS"
	EnvAlertSlackWebhooks = "SITEWATCH_ALERT_SLACK_WEBHOOKS"
	// EnvAlertSecret signs webhook bodies. It has no flag: a flag's value
	// is visible to every user of the machine (ps).
	EnvAlertSecret = "SITEWATCH_ALERT_SECRET"
)

// allParts are the components of -run, in the order they are listed; all
// but web run by default.
var allParts = []string{PartWindows, PartSinkResults, PartSinkWindows, PartAlerts, PartSinkIncidents, PartNotify, PartWeb}

// ProcessorFlags are the processor's own flags.
type ProcessorFlags struct {
	DatabaseURL     string
	Migrate         bool
	Run             string
	BatchSize       int
	FlushInterval   time.Duration
	Retention       time.Duration
	PartitionsAhead int
	WindowSize      time.Duration
	WindowGrace     time.Duration
	StateDir        string
	// HTTPAddr is where the web part listens; empty: off.
	HTTPAddr string
	// listener is set by the all-in-one command, which opens the address
	// before anything starts; onSites, also set by it, is called with
	// every site of the registry and after each change (its live table).
	listener net.Listener
	onSites  func([]registry.Entry)
	// AlertWebhooks and AlertSlackWebhooks are the notify part's
	// destinations; AlertSecret signs webhook bodies.
	AlertWebhooks      URLList
	AlertSlackWebhooks URLList
	AlertSecret        string
	AlertMaxAge        time.Duration
	AlertTimeout       time.Duration
	AlertFailures      int
	AlertSuccesses     int
	AlertCertDays      int
	AlertQuorum        int
	// Sites is a sites file whose sites are taken as the registry's
	// (names, thresholds, intervals) until the registry has them (the
	// processor's -sites; the all-in-one passes its own). Empty: the
	// registry's sites alone; a site known to neither gets the defaults
	// and its URL as name.
	Sites string
}

// RegisterProcessor declares the processor's flags on fs.
func RegisterProcessor(fs *flag.FlagSet) *ProcessorFlags {
	f := &ProcessorFlags{}
	RegisterDatabase(fs, &f.DatabaseURL)
	fs.BoolVar(&f.Migrate, "migrate", true, "apply database migrations at start")
	fs.StringVar(&f.Run, "run", defaultRun,
		"components to run, comma-separated: "+strings.Join(allParts, ", ")+" (each scales on its own; web is added when -http-addr is given with the default -run)")
	fs.StringVar(&f.HTTPAddr, "http-addr", os.Getenv("SITEWATCH_HTTP_ADDR"),
		"address of the status page, badges and JSON API, e.g. 127.0.0.1:8080 (env SITEWATCH_HTTP_ADDR; empty: off; the all-in-one command defaults to "+DefaultLocalHTTPAddr+")")
	fs.IntVar(&f.BatchSize, "batch-size", sinks.DefaultBatchSize, "most events per database write")
	fs.DurationVar(&f.FlushInterval, "flush-interval", sinks.DefaultFlushInterval, "longest an event waits before its batch is written")
	fs.DurationVar(&f.Retention, "retention", 90*24*time.Hour, "how long raw check results are kept (daily partitions older than this are dropped; 0 keeps all)")
	fs.IntVar(&f.PartitionsAhead, "partitions-ahead", 3, "daily partitions of check_results created ahead of today")
	fs.DurationVar(&f.WindowSize, "window-size", windows.DefaultWindowSize, "aggregation window length (the contract's is 5m; shorter only for testing)")
	fs.DurationVar(&f.WindowGrace, "window-grace", windows.DefaultGrace, "how late an event may arrive and still update its window")
	fs.StringVar(&f.StateDir, "state-dir", os.Getenv("SITEWATCH_STATE_DIR"), "directory for the local copies of the windows and alerts tables (empty: in memory, rebuilt from Kafka at start) (env SITEWATCH_STATE_DIR)")
	fs.IntVar(&f.AlertFailures, "alert-failures", alerts.DefaultFailures, "consecutive down checks that make a site down (a site's alert.failures in the sites file wins)")
	fs.IntVar(&f.AlertSuccesses, "alert-successes", alerts.DefaultSuccesses, "consecutive up checks that make a down site up again (a site's alert.successes wins)")
	fs.IntVar(&f.AlertQuorum, "alert-quorum", 0, "regions that must agree that a site is down (or up again), of those that checked it within 1.5 of its intervals (0: a majority of them)")
	fs.IntVar(&f.AlertCertDays, "alert-cert-days", alerts.DefaultCertDays, "report a certificate (cert_expiring) when fewer than this many days remain")
	f.AlertWebhooks.fromEnv(EnvAlertWebhooks)
	fs.Var(&f.AlertWebhooks, "alert-webhook", "URL to POST every status change to as JSON (repeatable; env "+EnvAlertWebhooks+", comma-separated; signed when "+EnvAlertSecret+" is set)")
	f.AlertSlackWebhooks.fromEnv(EnvAlertSlackWebhooks)
	fs.Var(&f.AlertSlackWebhooks, "alert-slack-webhook", "Slack-style incoming webhook URL (Slack, Mattermost, Discord's /slack) for a sentence per status change (repeatable; env "+EnvAlertSlackWebhooks+", comma-separated)")
	f.AlertSecret = os.Getenv(EnvAlertSecret)
	fs.DurationVar(&f.AlertMaxAge, "alert-max-age", notify.DefaultMaxAge, "how long after its changed_at a status change is still retried before it is dead-lettered")
	fs.DurationVar(&f.AlertTimeout, "alert-timeout", notify.DefaultTimeout, "time limit of one notification request")
	return f
}

// URLList is a repeatable flag of URLs with a default from a
// comma-separated environment variable; given on the command line, it
// replaces the environment's list. String shows hosts only, so that -help
// and error messages never print a token.
type URLList struct {
	URLs []string
	set  bool
}

func (l *URLList) fromEnv(name string) {
	for _, u := range strings.Split(os.Getenv(name), ",") {
		if u = strings.TrimSpace(u); u != "" {
			l.URLs = append(l.URLs, u)
		}
	}
}

// String lists the hosts.
func (l *URLList) String() string {
	if l == nil {
		return ""
	}
	hosts := make([]string, 0, len(l.URLs))
	for _, raw := range l.URLs {
		h := "?"
		if u, err := url.Parse(raw); err == nil && u.Host != "" {
			h = u.Host
		}
		hosts = append(hosts, h)
	}
	return strings.Join(hosts, ",")
}

// Set adds a URL, dropping the environment's list at the first one.
func (l *URLList) Set(v string) error {
	if !l.set {
		l.URLs, l.set = nil, true
	}
	l.URLs = append(l.URLs, v)
	return nil
}

// RegisterProcessorSites declares the processor's optional -sites: site
// names and alert thresholds for the alerts, names and intervals for the
// status page (the all-in-one command has the emitter's -sites instead).
func RegisterProcessorSites(fs *flag.FlagSet, f *ProcessorFlags) {
	fs.StringVar(&f.Sites, "sites", os.Getenv("SITEWATCH_SITES"),
		"sites file (YAML) standing in for sites the sites registry does not hold yet (names, alert thresholds, intervals; reloaded on SIGHUP); optional: the registry is followed either way (env SITEWATCH_SITES)")
}

// RegisterDatabase declares -database-url, defaulting to DATABASE_URL.
func RegisterDatabase(fs *flag.FlagSet, dst *string) {
	fs.StringVar(dst, "database-url", os.Getenv("DATABASE_URL"),
		"PostgreSQL URL, e.g. postgres://user:pass@host:port/db?sslmode=verify-full&sslrootcert=ca.pem, or sqlite://PATH (env DATABASE_URL)")
}

// parts parses -run.
func (f *ProcessorFlags) parts() (map[string]bool, error) {
	out := map[string]bool{}
	for _, p := range strings.Split(f.Run, ",") {
		p = strings.TrimSpace(p)
		switch {
		case slices.Contains(allParts, p):
			out[p] = true
		case p == "":
		default:
			return nil, Usagef("-run: unknown component %q (want %s)", p, strings.Join(allParts, ", "))
		}
	}
	if len(out) == 0 {
		return nil, Usagef("-run: no component selected")
	}
	if f.HTTPAddr != "" && f.Run == defaultRun {
		out[PartWeb] = true
	}
	if out[PartWeb] && f.HTTPAddr == "" {
		return nil, Usagef("-run web: needs -http-addr (or SITEWATCH_HTTP_ADDR), e.g. 127.0.0.1:8080")
	}
	return out, nil
}

// validate refuses flag values no component could use, naming the flag,
// before anything is contacted.
func (f *ProcessorFlags) validate() error {
	switch {
	case f.BatchSize < 1:
		return Usagef("-batch-size: %d, must be at least 1", f.BatchSize)
	case f.FlushInterval <= 0:
		return Usagef("-flush-interval: %s, must be positive", f.FlushInterval)
	case f.WindowSize <= 0:
		return Usagef("-window-size: %s, must be positive", f.WindowSize)
	case f.WindowGrace < 0:
		return Usagef("-window-grace: %s, must not be negative", f.WindowGrace)
	case f.Retention < 0:
		return Usagef("-retention: %s, must not be negative (0 keeps everything)", f.Retention)
	case f.PartitionsAhead < 0:
		return Usagef("-partitions-ahead: %d, must not be negative", f.PartitionsAhead)
	case f.AlertFailures < 1 || f.AlertFailures > config.MaxAlertThreshold:
		return Usagef("-alert-failures: %d, want 1..%d", f.AlertFailures, config.MaxAlertThreshold)
	case f.AlertSuccesses < 1 || f.AlertSuccesses > config.MaxAlertThreshold:
		return Usagef("-alert-successes: %d, want 1..%d", f.AlertSuccesses, config.MaxAlertThreshold)
	case f.AlertQuorum < 0 || f.AlertQuorum > alertsMaxQuorum:
		return Usagef("-alert-quorum: %d, want 0..%d (0: a majority)", f.AlertQuorum, alertsMaxQuorum)
	case f.AlertCertDays < 1:
		return Usagef("-alert-cert-days: %d, must be at least 1", f.AlertCertDays)
	case f.AlertMaxAge <= 0:
		return Usagef("-alert-max-age: %s, must be positive", f.AlertMaxAge)
	case f.AlertTimeout <= 0:
		return Usagef("-alert-timeout: %s, must be positive", f.AlertTimeout)
	}
	if err := notify.CheckDestinations(f.AlertWebhooks.URLs, f.AlertSlackWebhooks.URLs); err != nil {
		return &UsageError{err}
	}
	return nil
}

// Store is a sinks.Store with its Close.
type Store struct {
	sinks.Store
	Close func()
}

// sqlitePrefix selects the embedded store in -database-url.
const sqlitePrefix = "sqlite://"

// checkDatabaseURL refuses a -database-url no store can open, before
// anything is contacted: a URL whose scheme is neither PostgreSQL's nor
// SQLite's (pgx would otherwise try it as keyword/value settings and say
// something unrelated). Keyword/value strings ("host=… dbname=…") pass.
func checkDatabaseURL(databaseURL string) error {
	if databaseURL == "" {
		return Usagef("-database-url: no database given (or set DATABASE_URL)")
	}
	scheme, _, isURL := strings.Cut(databaseURL, "://")
	if !isURL {
		return nil
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql", "sqlite":
		return nil
	}
	return Usagef("-database-url: %q: unsupported scheme; use postgres:// or sqlite://", scheme+"://")
}

// describeStore names the store for logs and messages, without secrets.
func describeStore(databaseURL string) string {
	if strings.HasPrefix(databaseURL, sqlitePrefix) {
		return databaseURL
	}
	return "PostgreSQL"
}

// OpenStore opens the store -database-url names: SQLite for sqlite://PATH,
// PostgreSQL otherwise (migrated first when migrate is set; SQLite always
// brings its schema up to date). Its errors name -database-url, in one
// line, with what went wrong.
func OpenStore(ctx context.Context, logger *slog.Logger, databaseURL string, migrate bool) (Store, error) {
	if err := checkDatabaseURL(databaseURL); err != nil {
		return Store{}, err
	}
	if path, ok := strings.CutPrefix(databaseURL, sqlitePrefix); ok {
		// SQLite only says "unable to open database file" for a missing
		// directory; say which one.
		if dir := filepath.Dir(path); path != "" {
			if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
				return Store{}, fmt.Errorf("-database-url %s: directory %s does not exist; create it or choose another path", databaseURL, dir)
			}
		}
		s, err := sqlite.Open(ctx, path, logger)
		if err != nil {
			return Store{}, fmt.Errorf("-database-url: %w", err) // it names the path
		}
		return Store{s, func() { _ = s.Close() }}, nil
	}
	if migrate {
		if err := postgres.Migrate(ctx, databaseURL, logger); err != nil {
			return Store{}, fmt.Errorf("-database-url: postgresql: %w", err)
		}
	}
	s, err := postgres.Open(ctx, databaseURL, postgres.Options{Logger: logger})
	if err != nil {
		return Store{}, fmt.Errorf("-database-url: postgresql: %w", err)
	}
	return Store{s, s.Close}, nil
}

// StoreCheckTimeout bounds CheckStore: a database that does not answer in
// that time is reported rather than waited for.
const StoreCheckTimeout = 30 * time.Second

// CheckStore opens the store and closes it again, so that a program
// finds a wrong -database-url (or an unreachable database) before it
// starts anything else.
func CheckStore(ctx context.Context, logger *slog.Logger, databaseURL string, migrate bool) error {
	ctx, cancel := context.WithTimeoutCause(ctx, StoreCheckTimeout,
		fmt.Errorf("no answer within %s", StoreCheckTimeout))
	defer cancel()
	s, err := OpenStore(ctx, logger, databaseURL, migrate)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) && ctx.Err() == context.DeadlineExceeded {
			return fmt.Errorf("%w (%w)", err, cause)
		}
		return err
	}
	s.Close()
	return nil
}

// partitionMaintainer is implemented by stores with partitions to keep.
type partitionMaintainer interface {
	MaintainPartitions(ctx context.Context, now time.Time, ahead int, retention time.Duration) error
}

// RunProcessor runs the selected processor components until ctx ends:
// the windows goka group, the two sinks and the notifier, each a consumer
// group of its own so that they scale separately.
func RunProcessor(ctx context.Context, env Env, k *kafkaconn.Options, f *ProcessorFlags) error {
	parts, err := f.parts()
	if err != nil {
		return err
	}
	if err := f.validate(); err != nil {
		return err
	}
	saramaCfg, err := k.Sarama()
	if err != nil {
		return &UsageError{err}
	}
	// sarama asks for up to Fetch.Default bytes per partition and keeps
	// each response decompressed until its messages are consumed: at
	// sarama's 1 MiB, a processor catching up on a snappy backlog held
	// ~150 MiB of decompressed fetches (its heap profile) for its two
	// consumers of the result topics, the bulk of a 700 MiB peak RSS
	// (bench/processor). A quarter of that still brings more than a sink
	// batch of result events per partition per fetch.
	saramaCfg.Consumer.Fetch.Default = processorFetchBytes
	log := env.Logger.With("component", "processor")
	needSinks := parts[PartSinkResults] || parts[PartSinkWindows] || parts[PartSinkIncidents]
	needStore := needSinks || parts[PartWeb]
	if needStore && f.DatabaseURL == "" {
		return Usagef("-database-url: no database given (or set DATABASE_URL)")
	}
	// Unhealthy until every component is built; each then reports on
	// its own.
	env.Health.Set("processor", errors.New("starting: connecting to kafka and the database"))
	topics := k.Topics()
	if err := k.EnsureTopics(ctx, saramaCfg, log, topics.All()...); err != nil {
		return err
	}

	// The store is opened before anything starts, so that a database that
	// cannot be reached ends the run at once, with nothing left running.
	var store Store
	if needStore {
		store, err = OpenStore(ctx, log, f.DatabaseURL, f.Migrate)
		if err != nil {
			return err
		}
		defer store.Close()
	}

	// Every component is built before any starts: a configuration one of
	// them refuses ends the run with nothing left running.
	var runs []func(context.Context) error
	var wp *windows.Processor
	if parts[PartWindows] {
		wp, err = windows.New(windows.Config{
			Brokers: k.Brokers, Sarama: saramaCfg,
			Topics: windows.Topics{Succeeded: topics.Succeeded, Failed: topics.Failed, Windows: topics.Windows, DeadLetters: topics.DeadLetters},
			Group:  k.Group(string(windows.DefaultGroup)), WindowSize: f.WindowSize, Grace: f.WindowGrace,
			StorageDir: f.StateDir, Logger: log, Registerer: env.Registry,
			TopicManager: k.TopicManagerBuilder(saramaCfg), Health: env.Health.Part(PartWindows),
		})
		if err != nil {
			return &UsageError{fmt.Errorf("windows: %w", err)}
		}
		runs = append(runs, wp.Run)
	}
	// One follower of the sites registry for every part that names or
	// thresholds sites.
	var book *siteBook
	if parts[PartAlerts] || parts[PartWeb] || f.onSites != nil {
		if book, err = newSiteBook(ctx, k, log, f.Sites, "processor"); err != nil {
			return err
		}
		if f.onSites != nil {
			book.OnChange(f.onSites)
		}
		runs = append(runs, book.Run)
	}
	var ap *alerts.Processor
	if parts[PartAlerts] {
		ap, err = alerts.New(alerts.Config{
			Brokers: k.Brokers, Sarama: saramaCfg,
			Topics: alerts.Topics{Succeeded: topics.Succeeded, Failed: topics.Failed, Changes: topics.StatusChanges, DeadLetters: topics.DeadLetters},
			Group:  k.Group(string(alerts.DefaultGroup)), Failures: f.AlertFailures, Successes: f.AlertSuccesses, CertDays: f.AlertCertDays, Quorum: f.AlertQuorum,
			Rules: AlertRules(registry.SitesOf(book.Entries())), StorageDir: f.StateDir, Logger: log, Registerer: env.Registry,
			TopicManager: k.TopicManagerBuilder(saramaCfg), Health: env.Health.Part(PartAlerts),
		})
		if err != nil {
			return &UsageError{fmt.Errorf("alerts: %w", err)}
		}
		book.OnChange(func(entries []registry.Entry) { ap.SetRules(AlertRules(registry.SitesOf(entries))) })
		runs = append(runs, func(ctx context.Context) error {
			// The thresholds of every known site before the first event:
			// a site with failures: 1 must not wait for a default 3.
			if err := book.WaitReady(ctx); err != nil {
				return err
			}
			return ap.Run(ctx)
		})
	}
	if parts[PartWeb] {
		run, err := webPart(ctx, log, f, store, book)
		if err != nil {
			return err
		}
		runs = append(runs, run)
	}
	if needSinks {
		if pm, ok := store.Store.(partitionMaintainer); ok {
			runs = append(runs, func(ctx context.Context) error {
				maintainPartitions(ctx, log, pm, f.PartitionsAhead, f.Retention)
				return nil
			})
		}
		for _, sc := range []struct {
			part   string
			kind   sinks.Kind
			group  string
			topics []string
		}{
			{PartSinkResults, sinks.Results, groupSinkResults, []string{string(topics.Succeeded), string(topics.Failed)}},
			{PartSinkWindows, sinks.Windows, groupSinkWindows, []string{string(topics.Windows)}},
		} {
			if !parts[sc.part] {
				continue
			}
			s, err := sinks.New(sinks.Config{
				Brokers: k.Brokers, Sarama: saramaCfg, Group: string(k.Group(sc.group)), Topics: sc.topics,
				Kind: sc.kind, DeadLetterTopic: string(topics.DeadLetters),
				BatchSize: f.BatchSize, FlushInterval: f.FlushInterval,
				Logger: log, Registerer: env.Registry, // the sink adds sink=<kind>
				Health: env.Health.Part(sc.part), OutageAfter: env.OutageAfter,
			}, store.Store) // the store itself: its metrics, if any, export with the sink's
			if err != nil {
				return &UsageError{fmt.Errorf("%s: %w", sc.part, err)}
			}
			runs = append(runs, s.Run)
		}
	}
	if parts[PartSinkIncidents] {
		is, ok := store.Store.(sinks.IncidentStore)
		if !ok {
			return Usagef("-run %s: the store keeps no incidents", PartSinkIncidents)
		}
		// A sink of status changes, like notify's, into the incidents table.
		s, err := sinks.NewChanges(sinks.Config{
			Brokers: k.Brokers, Sarama: saramaCfg, Group: string(k.Group(groupSinkIncidents)),
			Topics: []string{string(topics.StatusChanges)}, Name: "incidents", DeadLetterTopic: string(topics.DeadLetters),
			BatchSize: f.BatchSize, FlushInterval: f.FlushInterval,
			Logger: log, Registerer: env.Registry,
			Health: env.Health.Part(PartSinkIncidents), OutageAfter: env.OutageAfter,
		}, is)
		if err != nil {
			return &UsageError{fmt.Errorf("%s: %w", PartSinkIncidents, err)}
		}
		runs = append(runs, s.Run)
	}
	if parts[PartNotify] {
		n, err := notify.New(notify.Config{
			Brokers: k.Brokers, Sarama: saramaCfg,
			Topic: string(topics.StatusChanges), DeadLetterTopic: string(topics.DeadLetters),
			Group:    string(k.Group("notify")),
			Webhooks: f.AlertWebhooks.URLs, SlackWebhooks: f.AlertSlackWebhooks.URLs, Secret: []byte(f.AlertSecret),
			MaxAge: f.AlertMaxAge, Timeout: f.AlertTimeout,
			Logger: log, Registerer: env.Registry,
		})
		if err != nil {
			return &UsageError{err}
		}
		runs = append(runs, n.Run)
	}

	env.Health.Set("processor", nil)
	g, gctx := errgroup.WithContext(ctx)
	for _, run := range runs {
		g.Go(func() error { return run(gctx) })
	}
	log.Info("processor started", "run", f.Run, "brokers", k.Brokers)
	err = g.Wait()
	log.Info("processor stopped")
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// alertsMaxQuorum is the largest -alert-quorum: as many regions as a
// URL's alerts state keeps.
const alertsMaxQuorum = alerts.MaxRegions

// AlertRules maps the sites to what the alerts need of them.
func AlertRules(sites []config.Site) map[string]alerts.Rule {
	out := make(map[string]alerts.Rule, len(sites))
	for _, s := range sites {
		out[s.URL] = alerts.Rule{Name: s.Name, Failures: s.Alert.Failures, Successes: s.Alert.Successes, Interval: s.Interval}
	}
	return out
}

// webPart builds the web part: the listener (unless the all-in-one command
// opened it) and the server over the store's reads, with the report and
// the sites API's writes (to sitewatch_sites) on the same address. The
// sites it lists are the book's, followed live.
func webPart(ctx context.Context, log *slog.Logger, f *ProcessorFlags, store Store, book *siteBook) (func(context.Context) error, error) {
	reader, ok := store.Store.(web.Reader)
	if !ok {
		return nil, fmt.Errorf("web: the store %T cannot be read", store.Store)
	}
	source, ok := store.Store.(sla.Source)
	if !ok {
		return nil, fmt.Errorf("web: the store %T cannot report", store.Store)
	}
	type lists struct {
		web    []web.Site
		report []sla.Site
	}
	var current atomic.Pointer[lists]
	book.OnChange(func(entries []registry.Entry) {
		l := &lists{web: WebSites(entries), report: make([]sla.Site, 0, len(entries))}
		for _, e := range entries {
			l.report = append(l.report, sla.Site{URL: e.Site.URL, Name: e.Site.Name, Interval: e.Site.Interval})
		}
		current.Store(l)
	})
	weblog := log.With("part", PartWeb)
	routes := map[string]http.Handler{
		sla.Pattern: sla.Handler(sla.HandlerConfig{Source: source, Sites: func() []sla.Site { return current.Load().report }, Logger: weblog}),
	}
	api, err := sitesapi.New(sitesapi.Config{Store: book.Registry(), Token: os.Getenv(sitesapi.TokenEnv), Logger: weblog})
	if err != nil {
		return nil, fmt.Errorf("web: sites api: %w", err)
	}
	for _, pattern := range sitesapi.WritePatterns {
		routes[pattern] = api
	}
	srv, err := web.New(web.Config{Reader: reader, Sites: func() []web.Site { return current.Load().web }, Logger: weblog, Routes: routes})
	if err != nil {
		return nil, err
	}
	ln := f.listener
	if ln == nil {
		if ln, err = web.Listen(f.HTTPAddr); err != nil {
			return nil, err
		}
	}
	log.Info("status page serving", "url", "http://"+ln.Addr().String()+"/")
	return func(ctx context.Context) error {
		// The sites API reads its own writes back: it needs the registry
		// caught up before it answers.
		if err := book.WaitReady(ctx); err != nil {
			ln.Close()
			return err
		}
		return web.Serve(ctx, ln, srv, log)
	}, nil
}

// WebSites are the sites as the status page names them.
func WebSites(entries []registry.Entry) []web.Site {
	out := make([]web.Site, 0, len(entries))
	for _, e := range entries {
		s := e.Site
		out = append(out, web.Site{URL: s.URL, Name: s.Name, Interval: s.Interval, Timeout: s.Timeout, Owner: e.Owner})
	}
	return out
}

// maintainPartitions keeps daily partitions created ahead and drops expired
// ones, at start and then hourly. Failures are logged and retried next
// round: a missing partition only sends rows to the default partition.
func maintainPartitions(ctx context.Context, log *slog.Logger, pm partitionMaintainer, ahead int, retention time.Duration) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if err := pm.MaintainPartitions(ctx, time.Now(), ahead, retention); err != nil && ctx.Err() == nil {
			log.Error("partition upkeep failed; retrying in an hour", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunMigrate applies the migrations and returns: `processor migrate`.
func RunMigrate(ctx context.Context, env Env, databaseURL string) error {
	if databaseURL == "" {
		return Usagef("-database-url: no database given (or set DATABASE_URL)")
	}
	if err := checkDatabaseURL(databaseURL); err != nil {
		return err
	}
	if strings.HasPrefix(databaseURL, sqlitePrefix) {
		return Usagef("-database-url: migrate is for PostgreSQL; an SQLite database migrates itself when the processor opens it")
	}
	if err := postgres.Migrate(ctx, databaseURL, env.Logger); err != nil {
		return fmt.Errorf("-database-url: postgresql: %w", err)
	}
	env.Logger.Info("migrations applied")
	return nil
}
