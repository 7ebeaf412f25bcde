package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/sync/errgroup"
	"golang.org/x/term"

	"github.com/sitewatch/sitewatch/config"
	"github.com/sitewatch/sitewatch/dashboard"
	"github.com/sitewatch/sitewatch/internal/demo"
	"github.com/sitewatch/sitewatch/kafkaconn"
	"github.com/sitewatch/sitewatch/processors/alerts"
	"github.com/sitewatch/sitewatch/processors/windows"
	"github.com/sitewatch/sitewatch/registry"
	"github.com/sitewatch/sitewatch/web"
)

// Live table modes selectable with -table.
const (
	TableAuto = "auto"
	TableOn   = "on"
	TableOff  = "off"
)

// Files and directories inside the all-in-one data directory.
const (
	DefaultDataDir = "sitewatch-data"
	dataKafka      = "kafka"
	dataSQLite     = "sitewatch.db"
	dataLog        = "sitewatch.log"
	dataLock       = "sitewatch.lock"
)

// The -demo's defaults: its own data directory, so that the demo sites
// do not mix with a real history, and a stable address, so that its sites
// keep their URLs from one run to the next.
const (
	DemoDataDir       = "sitewatch-demo"
	DefaultDemoListen = "127.0.0.1:8099"
)

// DefaultLocalHTTPAddr is the all-in-one command's -http-addr unless
// given (an empty -http-addr turns the status page off).
const DefaultLocalHTTPAddr = "127.0.0.1:8080"

// LocalPartitions is the partition count of the topics the all-in-one
// command creates in its embedded Kafka unless -topic-partitions is given:
// one process consumes them all, so more partitions only cost memory.
const LocalPartitions = 3

// LocalFlags are the all-in-one command's own flags.
type LocalFlags struct {
	DataDir     string
	Table       string
	Refresh     time.Duration
	KafkaListen string
	Demo        bool
	DemoListen  string
}

// RegisterLocal declares -data-dir, -table, -table-refresh, -kafka-listen,
// -demo and -demo-listen.
func RegisterLocal(fs *flag.FlagSet) *LocalFlags {
	f := &LocalFlags{}
	fs.StringVar(&f.DataDir, "data-dir", envOr("SITEWATCH_DATA_DIR", "./"+DefaultDataDir),
		"directory for the embedded Kafka, the embedded SQLite database and the log file; running again on it continues the history (env SITEWATCH_DATA_DIR)")
	fs.StringVar(&f.Table, "table", TableAuto,
		"live status table on standard output: auto (when it is a terminal), on, off (log lines only)")
	fs.DurationVar(&f.Refresh, "table-refresh", dashboard.DefaultRefresh, "how often the live table is redrawn")
	fs.StringVar(&f.KafkaListen, "kafka-listen", envOr("SITEWATCH_KAFKA_LISTEN", DefaultKafkaListen),
		"address of the embedded Kafka (without -brokers), for kcat and other clients; when taken, a free port is used and shown (env SITEWATCH_KAFKA_LISTEN)")
	fs.BoolVar(&f.Demo, "demo", false,
		"check five local demo sites served by this process (up, slow, flapping, error 500, wrong content), every "+demo.Interval.String()+", into ./"+DemoDataDir+" unless -data-dir is given; no -sites")
	fs.StringVar(&f.DemoListen, "demo-listen", DefaultDemoListen, "address of the -demo sites; when taken, a free port is used")
	return f
}

// AllInOne is the sitewatch command: the emitter, the processor and the
// sinks in one process, the same code as the separate commands, with an
// embedded Kafka when no -brokers is given and an embedded SQLite store
// when no -database-url is given, both under the data directory.
type AllInOne struct {
	// Flags is the parsed flag set, to tell given flags from defaults.
	Flags     *flag.FlagSet
	Common    *CommonFlags
	Kafka     *kafkaconn.Options
	Emitter   *EmitterFlags
	Processor *ProcessorFlags
	Local     *LocalFlags
	// Stdout receives the live table; Stderr the logs (unless the table
	// is on, which sends them to the log file in the data directory).
	Stdout, Stderr io.Writer
}

// Run runs everything until ctx ends or a part fails. Mistakes in flags or
// the sites file are UsageErrors, found before anything starts.
func (a *AllInOne) Run(ctx context.Context) error {
	table, err := a.tableMode()
	if err != nil {
		return err
	}
	var demoURL string
	if a.Local.Demo {
		srv, stop, err := a.startDemo()
		if err != nil {
			return err
		}
		defer stop()
		demoURL = srv.URL
	}
	// Without -sites the sites are the registry's: those added before
	// (kept in the data directory's Kafka) and through the API.
	sites := &config.File{}
	if a.Emitter.Sites != "" {
		if sites, err = LoadSites(a.Emitter.Sites); err != nil {
			return err
		}
	}
	if a.Processor.WindowSize <= 0 {
		return Usagef("-window-size: must be positive")
	}
	if err := a.Emitter.CheckRegion(); err != nil {
		return err
	}

	embeddedKafka := len(a.Kafka.Brokers) == 0
	embeddedStore := a.Processor.DatabaseURL == ""
	if !embeddedKafka && a.given("kafka-listen") {
		return Usagef("-kafka-listen: only for the embedded Kafka; with -brokers it has no use")
	}
	if !embeddedStore {
		// An unsupported scheme is a usage error, found before the data
		// directory is made.
		if err := checkDatabaseURL(a.Processor.DatabaseURL); err != nil {
			return err
		}
	}
	var dir *DataDir
	if embeddedKafka || embeddedStore || table {
		if dir, err = OpenDataDir(a.Local.DataDir); err != nil {
			return err
		}
		defer dir.Close()
	}
	if embeddedStore {
		a.Processor.DatabaseURL = dir.SQLiteURL()
	}
	// The alerts take site names and thresholds from the same file (and
	// reload it on SIGHUP with the emitter).
	a.Processor.Sites = a.Emitter.Sites
	if embeddedKafka && !a.given("topic-partitions") {
		a.Kafka.Partitions = LocalPartitions
	}

	// The status page's address is opened first: one taken by another
	// program ends the run before anything starts.
	if !a.given("http-addr") && os.Getenv("SITEWATCH_HTTP_ADDR") == "" {
		a.Processor.HTTPAddr = DefaultLocalHTTPAddr
	}
	statusURL := ""
	if a.Processor.HTTPAddr != "" {
		ln, err := web.Listen(a.Processor.HTTPAddr)
		if err != nil {
			return fmt.Errorf("%w (pass another -http-addr, or -http-addr '' for no status page)", err)
		}
		defer ln.Close()
		a.Processor.listener = ln
		statusURL = "http://" + ln.Addr().String() + "/"
		if !table {
			fmt.Fprintf(a.Stdout, "sitewatch: status page at %s\n", statusURL)
		}
	}

	logTo := a.Stderr
	if table {
		f, err := os.OpenFile(dir.LogPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("open log file: %w", err)
		}
		defer f.Close()
		logTo = f
	}

	board := dashboard.NewBoard(boardSites(sites.Sites), a.Processor.WindowSize)
	a.Processor.onSites = func(entries []registry.Entry) { board.SetSites(boardSites(registry.SitesOf(entries))) }
	if demoURL != "" && !table {
		fmt.Fprintf(a.Stdout, "sitewatch -demo: %d local sites at %s, checked every %s; the sites file is %s\n",
			len(sites.Sites), demoURL, demo.Interval, a.Emitter.Sites)
	}
	err = Main(ctx, a.Common, logTo, func(ctx context.Context, env Env) error {
		return a.run(ctx, env, dir, embeddedKafka, table, board, statusURL)
	})
	if table && err == nil {
		fmt.Fprintln(a.Stdout, a.stopMessage(dir, embeddedStore))
	}
	return err
}

// startDemo serves the demo sites and points -sites at a sites file for
// them; stop ends both.
func (a *AllInOne) startDemo() (srv *demo.Server, stop func(), err error) {
	if a.given("sites") {
		return nil, nil, Usagef("-demo checks its own local sites; leave out -sites")
	}
	if !a.given("data-dir") && a.Local.DataDir == "./"+DefaultDataDir {
		a.Local.DataDir = "./" + DemoDataDir
	}
	host, _, err := net.SplitHostPort(a.Local.DemoListen)
	if err != nil {
		return nil, nil, Usagef("-demo-listen %q: want HOST:PORT, e.g. %s", a.Local.DemoListen, DefaultDemoListen)
	}
	ln, _, err := listenOrFree(host, a.Local.DemoListen)
	if err != nil {
		return nil, nil, fmt.Errorf("-demo-listen %s: %w", a.Local.DemoListen, err)
	}
	srv = demo.Serve(ln)
	f, err := os.CreateTemp("", "sitewatch-demo-*.yaml")
	if err == nil {
		_, err = f.Write(demo.SitesFile(srv.URL))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		_ = srv.Close()
		return nil, nil, fmt.Errorf("-demo: write its sites file: %w", err)
	}
	a.Emitter.Sites = f.Name()
	return srv, func() {
		_ = srv.Close()
		_ = os.Remove(f.Name())
	}, nil
}

// stopMessage is the last line on a terminal: where the history is.
func (a *AllInOne) stopMessage(dir *DataDir, embeddedStore bool) string {
	if embeddedStore {
		return fmt.Sprintf("sitewatch stopped; the history is kept in %s (logs in %s)", dir.Path, dir.LogPath())
	}
	return fmt.Sprintf("sitewatch stopped; the history is kept in %s (logs in %s)", describeStore(a.Processor.DatabaseURL), dir.LogPath())
}

// run starts the embedded Kafka if needed, then the emitter, the processor
// and the live table, and stops them in that order: the emitter first (no
// new checks; checks in flight finish and are flushed to Kafka), then the
// processor (whatever it has consumed is written), then Kafka, which saves
// its topics and offsets on close.
func (a *AllInOne) run(ctx context.Context, env Env, dir *DataDir, embeddedKafka, table bool, board *dashboard.Board, statusURL string) error {
	log := env.Logger
	// The store first: a database that cannot be used ends the run with
	// one line, before Kafka, the checks or the table start.
	if err := CheckStore(ctx, log, a.Processor.DatabaseURL, a.Processor.Migrate); err != nil {
		return err
	}
	kafkaWhere := "Kafka " + strings.Join(a.Kafka.Brokers, ",")
	if embeddedKafka {
		cluster, err := StartEmbeddedKafka(dir.KafkaDir(), a.Local.KafkaListen, log)
		if err != nil {
			return err
		}
		defer func() {
			cluster.Close()
			log.Info("embedded kafka stopped", "dir", dir.KafkaDir())
		}()
		a.Kafka.Brokers = []string{cluster.Addr}
		kafkaWhere = cluster.Describe()
		if !table {
			fmt.Fprintf(a.Stdout, "sitewatch: embedded %s; read a topic with: kcat -b %s -C -t %s\n",
				kafkaWhere, cluster.Addr, a.Kafka.Topics().Failed)
		}
	}
	// Without a sites file there may be no site yet: say how to add one.
	var addHint string
	if a.Emitter.Sites == "" {
		addHint = "no -sites file: checking the sites registry's sites; add one with: sitewatch sites -brokers " +
			strings.Join(a.Kafka.Brokers, ",") + " add https://example.com/"
		if !table {
			fmt.Fprintln(a.Stdout, "sitewatch: "+addHint)
		}
	}
	log.Info("sitewatch starting", "brokers", a.Kafka.Brokers, "embedded_kafka", embeddedKafka,
		"store", describeStore(a.Processor.DatabaseURL), "window_size", a.Processor.WindowSize)

	saramaCfg, err := a.Kafka.Sarama()
	if err != nil {
		return &UsageError{err}
	}
	// Topics first, so that the three parts below find them all.
	topics := a.Kafka.Topics()
	if err := a.Kafka.EnsureTopics(ctx, saramaCfg, log, topics.All()...); err != nil {
		return err
	}

	// emitCtx ends the emitter (at a signal, or when another part fails);
	// the processor outlives it until the emitter has drained.
	emitCtx, stopEmitter := context.WithCancel(ctx)
	defer stopEmitter()
	procCtx, stopProcessor := context.WithCancel(context.WithoutCancel(ctx))
	defer stopProcessor()

	// procAlive ends when the processor returns, so that nothing waits
	// for a processor that is gone.
	procAlive, procGone := context.WithCancel(procCtx)
	defer procGone()

	var g errgroup.Group
	g.Go(func() error {
		defer stopProcessor()
		err := RunEmitter(emitCtx, env, a.Kafka, a.Emitter)
		if err != nil {
			return fmt.Errorf("emitter: %w", err)
		}
		// Every check made is on Kafka now; let the processor store it
		// before it stops, so that the database is complete at exit.
		a.waitProcessed(procAlive, saramaCfg, log)
		return nil
	})
	g.Go(func() error {
		defer stopEmitter()
		defer procGone()
		err := RunProcessor(procCtx, env, a.Kafka, a.Processor)
		if err != nil {
			err = fmt.Errorf("processor: %w", err)
		}
		return err
	})
	g.Go(func() error {
		cfg := dashboard.Config{
			Brokers: a.Kafka.Brokers, Sarama: saramaCfg,
			Topics:       []string{string(topics.Succeeded), string(topics.Failed)},
			ChangesTopic: string(topics.StatusChanges),
			Board:        board, Out: a.Stdout, Terminal: table, Refresh: a.Local.Refresh,
			Logger: log,
		}
		if table {
			cfg.Title = "sitewatch · " + kafkaWhere + " · Ctrl-C to stop"
			if a.Local.Demo {
				cfg.Title = "sitewatch -demo · " + kafkaWhere + " · Ctrl-C to stop"
			}
			cfg.Paths = []dashboard.Path{{Label: "data", Path: dir.Path}, {Label: "logs", Path: dir.LogPath()}}
			cfg.Grace = a.Processor.WindowGrace
			cfg.Empty = addHint
			if statusURL != "" {
				cfg.Title = strings.Replace(cfg.Title, " · Ctrl-C to stop", " · status page: "+statusURL+" · Ctrl-C to stop", 1)
			}
			if fd, ok := terminalFD(a.Stdout); ok {
				cfg.Size = func() (int, int) {
					w, h, err := term.GetSize(fd)
					if err != nil {
						return 0, 0
					}
					return w, h
				}
				cfg.Color = os.Getenv("NO_COLOR") == ""
			}
		}
		// The table is a convenience: its failure is logged, never fatal.
		if err := dashboard.Run(emitCtx, cfg); err != nil {
			log.Error("live table failed", "err", err)
		}
		return nil
	})
	return g.Wait()
}

// tableMode validates -table and says whether the live table is on.
func (a *AllInOne) tableMode() (bool, error) {
	switch a.Local.Table {
	case TableOn:
		return true, nil
	case TableOff:
		return false, nil
	case TableAuto, "":
		_, ok := terminalFD(a.Stdout)
		return ok, nil
	}
	return false, Usagef("-table: %q is not auto, on or off", a.Local.Table)
}

// given reports whether the flag was set on the command line.
func (a *AllInOne) given(name string) bool {
	found := false
	if a.Flags != nil {
		a.Flags.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	}
	return found
}

// terminalFD returns w's file descriptor when w is a terminal.
func terminalFD(w io.Writer) (int, bool) {
	f, ok := w.(*os.File)
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

func boardSites(sites []config.Site) []dashboard.Site {
	out := make([]dashboard.Site, 0, len(sites))
	for _, s := range sites {
		out = append(out, dashboard.Site{URL: s.URL, Name: s.Name})
	}
	return out
}

// DefaultKafkaListen is where the all-in-one's embedded Kafka listens
// unless -kafka-listen says otherwise: Kafka's usual port, so that kcat and
// other clients find it without reading the log.
const DefaultKafkaListen = "127.0.0.1:9092"

// EmbeddedKafka is the all-in-one's in-process broker.
type EmbeddedKafka struct {
	*kfake.Cluster
	// Addr is where it listens; Wanted is the -kafka-listen it was asked
	// for, and FellBack says that address was taken.
	Addr, Wanted string
	FellBack     bool
}

// Describe is the one-line "where is Kafka" for the start message and the
// live table's header.
func (k *EmbeddedKafka) Describe() string {
	if k.FellBack {
		return fmt.Sprintf("Kafka %s (%s was taken)", k.Addr, k.Wanted)
	}
	return "Kafka " + k.Addr
}

// StartEmbeddedKafka starts a one-broker in-process Kafka on listen
// (HOST:PORT; port 0 picks a free one) that keeps its topics, records and
// committed offsets under dir, and reloads them when started again on the
// same dir. When the address is taken (another Kafka on 9092, a second
// sitewatch), it listens on a free port of the same host instead and says
// so in a warning.
func StartEmbeddedKafka(dir, listen string, logger *slog.Logger) (*EmbeddedKafka, error) {
	if listen == "" {
		listen = DefaultKafkaListen
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, Usagef("-kafka-listen %q: want HOST:PORT, e.g. %s", listen, DefaultKafkaListen)
	}
	ln, fellBack, err := listenOrFree(host, listen)
	if err != nil {
		return nil, fmt.Errorf("-kafka-listen %s: %w", listen, err)
	}
	if fellBack {
		logger.Warn("-kafka-listen address taken; the embedded kafka listens on a free port instead",
			"wanted", listen, "addr", ln.Addr().String())
	}
	// kfake asks for one listener per broker (one here); hand it the one
	// opened above, so the address checked is the address served.
	var once sync.Once
	listenFn := func(network, address string) (net.Listener, error) {
		var l net.Listener
		once.Do(func() { l = ln })
		if l != nil {
			return l, nil
		}
		return net.Listen(network, address)
	}
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.ListenFn(listenFn),
		kfake.DataDir(dir),
		kfake.DefaultNumPartitions(LocalPartitions),
		kfake.WithLogger(kfakeLogger{logger.With("component", "kafka")}),
	)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("start embedded kafka in %s: %w", dir, err)
	}
	k := &EmbeddedKafka{Cluster: c, Addr: ln.Addr().String(), Wanted: listen, FellBack: fellBack}
	logger.Info("embedded kafka started", "addr", k.Addr, "dir", dir)
	return k, nil
}

// listenOrFree listens on addr or, when it is taken, on a free port of
// host, and says which.
func listenOrFree(host, addr string) (ln net.Listener, fellBack bool, err error) {
	ln, err = net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		ln, err = net.Listen("tcp", net.JoinHostPort(host, "0"))
		return ln, true, err
	}
	return ln, false, err
}

// kfakeLogger routes the embedded Kafka's logs into slog. Its info level
// narrates every request, so it goes to debug and its debug level nowhere.
type kfakeLogger struct{ l *slog.Logger }

func (k kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	var lv slog.Level
	switch level {
	case kfake.LogLevelError:
		lv = slog.LevelError
	case kfake.LogLevelWarn:
		lv = slog.LevelWarn
	case kfake.LogLevelInfo:
		lv = slog.LevelDebug
	default:
		return
	}
	if k.l.Enabled(context.Background(), lv) {
		k.l.Log(context.Background(), lv, fmt.Sprintf(format, args...))
	}
}

// DataDir is the all-in-one data directory, held by one process at a time
// through a lock file.
type DataDir struct {
	// Path is the directory as given.
	Path string
	lock *os.File
}

// ErrDataDirInUse is returned by OpenDataDir when another process holds
// the directory.
var ErrDataDirInUse = errors.New("in use by another sitewatch")

// OpenDataDir creates the directory if needed and locks it. A directory
// that cannot be created or written, or that another process holds, is an
// error naming -data-dir and what to do.
func OpenDataDir(path string) (*DataDir, error) {
	if path == "" {
		return nil, Usagef("-data-dir: empty (or unset SITEWATCH_DATA_DIR)")
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("-data-dir %s: cannot create it: %w", path, unwrapPath(err))
	}
	lockPath := filepath.Join(path, dataLock)
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("-data-dir %s: not writable: %w", path, unwrapPath(err))
	}
	if err := lockFile(f); err != nil {
		owner, _ := io.ReadAll(io.LimitReader(f, 32))
		f.Close()
		if errors.Is(err, ErrDataDirInUse) {
			pid := strings.TrimSpace(string(owner))
			if pid == "" {
				pid = "unknown"
			}
			return nil, fmt.Errorf("-data-dir %s: %w (pid %s); stop it or pass another -data-dir", path, ErrDataDirInUse, pid)
		}
		return nil, fmt.Errorf("-data-dir %s: lock %s: %w", path, lockPath, err)
	}
	// The pid is only for the message above; the lock is what counts.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &DataDir{Path: path, lock: f}, nil
}

// unwrapPath drops the *PathError's operation and path when the message
// already names the directory.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// KafkaDir is where the embedded Kafka keeps its state.
func (d *DataDir) KafkaDir() string { return filepath.Join(d.Path, dataKafka) }

// SQLiteURL is the -database-url of the embedded store.
func (d *DataDir) SQLiteURL() string { return sqlitePrefix + filepath.Join(d.Path, dataSQLite) }

// LogPath is the log file used while the live table is on.
func (d *DataDir) LogPath() string { return filepath.Join(d.Path, dataLog) }

// Close releases the directory for the next process.
func (d *DataDir) Close() error {
	if d.lock == nil {
		return nil
	}
	_ = d.lock.Truncate(0)
	err := d.lock.Close() // closing the descriptor releases the lock
	d.lock = nil
	if err != nil {
		return fmt.Errorf("release -data-dir %s: %w", d.Path, err)
	}
	return nil
}

// Consumer groups of the processor's sinks, as RunProcessor names them
// (before the topic prefix).
const (
	groupSinkResults   = "sink_results"
	groupSinkWindows   = "sink_windows"
	groupSinkIncidents = "sink_incidents"
)

// CatchUpTimeout bounds how long the all-in-one command, at shutdown,
// waits for the processor to store the results the emitter produced last.
// What is left then is stored at the next start.
const CatchUpTimeout = 15 * time.Second

// waitProcessed waits, up to CatchUpTimeout, until the processor's groups
// have committed everything on their input topics: first the windows and
// alerts groups and the results sink on the result topics, then the
// windows and incidents sinks on the topics those groups write (whose ends
// are read after the groups caught up, so they include what the last
// results made).
func (a *AllInOne) waitProcessed(ctx context.Context, cfg *sarama.Config, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, CatchUpTimeout)
	defer cancel()
	parts, err := a.Processor.parts()
	if err != nil {
		return
	}
	client, err := sarama.NewClient(a.Kafka.Brokers, cfg)
	if err != nil {
		log.Warn("cannot wait for the processor to catch up", "err", err)
		return
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		client.Close()
		log.Warn("cannot wait for the processor to catch up", "err", err)
		return
	}
	defer admin.Close() // closes client too

	topics := a.Kafka.Topics()
	results := []string{string(topics.Succeeded), string(topics.Failed)}
	start := time.Now()
	// A consumer of a topic another group writes waits for that group.
	for _, step := range []struct {
		on     bool
		group  goka.Group
		topics []string
	}{
		{parts[PartWindows], a.Kafka.Group(string(windows.DefaultGroup)), results},
		{parts[PartAlerts], a.Kafka.Group(string(alerts.DefaultGroup)), results},
		{parts[PartSinkResults], a.Kafka.Group(groupSinkResults), results},
		{parts[PartSinkWindows], a.Kafka.Group(groupSinkWindows), []string{string(topics.Windows)}},
		{parts[PartSinkIncidents], a.Kafka.Group(groupSinkIncidents), []string{string(topics.StatusChanges)}},
	} {
		if !step.on {
			continue
		}
		for {
			done, err := caughtUp(client, admin, string(step.group), step.topics)
			if done {
				break
			}
			select {
			case <-ctx.Done():
				if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
					// The processor is gone (it failed, and says why
					// itself): there is nothing to wait for, and its
					// groups' offsets are no news.
					return
				}
				log.Warn("processor did not catch up before stopping; the rest is stored at the next start",
					"group", step.group, "waited", time.Since(start).Round(time.Millisecond), "err", err)
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	log.Info("processor caught up", "waited", time.Since(start).Round(time.Millisecond))
}

// caughtUp reports whether group has committed the end of every partition
// of topics.
func caughtUp(client sarama.Client, admin sarama.ClusterAdmin, group string, topics []string) (bool, error) {
	want := map[string][]int32{}
	for _, t := range topics {
		ps, err := client.Partitions(t)
		if err != nil {
			return false, fmt.Errorf("partitions of %s: %w", t, err)
		}
		want[t] = ps
	}
	committed, err := admin.ListConsumerGroupOffsets(group, want)
	if err != nil {
		return false, fmt.Errorf("offsets of group %s: %w", group, err)
	}
	for t, ps := range want {
		for _, p := range ps {
			end, err := client.GetOffset(t, p, sarama.OffsetNewest)
			if err != nil {
				return false, fmt.Errorf("end of %s/%d: %w", t, p, err)
			}
			if end <= 0 {
				continue
			}
			b := committed.GetBlock(t, p)
			if b == nil || b.Offset < end {
				return false, nil
			}
		}
	}
	return true, nil
}
