package dashboard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/kafkarun"
	"github.com/sitewatch/sitewatch/internal/retry"
)

// Defaults of Config.
const (
	DefaultRefresh  = 2 * time.Second
	DefaultLookback = time.Hour
)

// Terminal control sequences for redrawing in place.
const (
	clearScreen = "\x1b[H\x1b[2J"
	cursorHome  = "\x1b[H"
	clearLine   = "\x1b[K"
	clearBelow  = "\x1b[J"
)

// Config configures Run.
type Config struct {
	Brokers []string
	// Sarama is the Kafka configuration (TLS, SASL); Run uses a copy.
	Sarama *sarama.Config
	// Topics are the result topics (status_request_succeeded and
	// status_request_failed with any prefix).
	Topics []string
	// ChangesTopic is status_changes (with any prefix), whose changes the
	// table lists below the sites; empty: none.
	ChangesTopic string
	Board        *Board
	// Out receives the table when Terminal is set.
	Out io.Writer
	// Terminal redraws the table on Out every Refresh. Without it, Run
	// logs one line when a site goes down or comes back up.
	Terminal bool
	// Refresh is how often the table is redrawn (DefaultRefresh).
	Refresh time.Duration
	// Title is the table's first line (or lines); Paths and Grace are
	// the Layout's, under it.
	Title string
	Paths []Path
	Grace time.Duration
	// Empty is the Layout's: shown while there is no site.
	Empty string
	// Size returns the terminal's width and height; nil or zeros mean
	// unlimited.
	Size func() (width, height int)
	// Color marks up and down sites with ANSI colors.
	Color bool
	// Lookback is how far before its start Run reads results
	// (DefaultLookback, and at least the board's window), so that the
	// table starts with recent history: the last failure of a site that
	// is up again, and a full window of uptime.
	Lookback time.Duration
	Logger   *slog.Logger
	// Now is the wall clock (tests pass a fake one).
	Now func() time.Time
}

// Run consumes the result topics into the board and shows it until ctx
// ends. It commits nothing and joins no group: it only watches.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Board == nil {
		return errors.New("dashboard: no board")
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.Lookback <= 0 {
		cfg.Lookback = DefaultLookback
	}
	cfg.Lookback = max(cfg.Lookback, cfg.Board.Window())
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	log := cfg.Logger.With("component", "dashboard")
	start := cfg.Now()

	// problem is why the table is not following Kafka right now, shown in
	// its title until the consumers run again.
	var problem atomic.Pointer[string]
	var draw func(stopping bool)
	if cfg.Terminal {
		draw = func(stopping bool) {
			l := Layout{Title: cfg.Title, Paths: cfg.Paths, Grace: cfg.Grace, Color: cfg.Color, Empty: cfg.Empty}
			if p := problem.Load(); p != nil {
				l.Title = strings.TrimSpace(l.Title + "  [not following kafka: " + *p + "]")
			}
			if cfg.Size != nil {
				l.Width, l.Height = cfg.Size()
			}
			if stopping {
				l.Title = "stopping: finishing checks in flight and writing what is left…"
			}
			text := Render(cfg.Board.Snapshot(cfg.Now()), l)
			// Each line clears the rest of its row and the screen below
			// the table is cleared, so a shorter frame leaves no debris.
			// The last line has no newline: on a full screen it would
			// scroll the title away.
			text = strings.TrimSuffix(text, "\n")
			frame := cursorHome + strings.ReplaceAll(text, "\n", clearLine+"\n") + clearLine + clearBelow
			if _, err := io.WriteString(cfg.Out, frame); err != nil {
				log.Debug("draw table", "err", err)
			}
		}
		// The cursor stays visible: a forced exit (a second Ctrl-C) cannot
		// restore a hidden one.
		fmt.Fprint(cfg.Out, clearScreen)
		draw(false)
	}

	onChange := func(c Change) {
		// Only in plain mode, and only for what happens after the start:
		// the history read at start is not news.
		if cfg.Terminal || c.At.Before(start) {
			return
		}
		if c.Up {
			log.Info("site up", "site", c.Name, "url", c.URL, "region", c.Region, "checked_at", c.At)
		} else {
			log.Warn("site down", "site", c.Name, "url", c.URL, "region", c.Region, "checked_at", c.At, "error_kind", c.ErrorKind, "error", c.ErrorMessage)
		}
	}

	// The table is a convenience: when it cannot read Kafka the pipeline
	// goes on; the reason is logged at once and shown in the title, and
	// the consumers are started again with backoff. Each new start reads
	// from since again: the board ignores the results it has already.
	consumeCtx, stopConsume := context.WithCancel(ctx)
	defer stopConsume()
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		backoff := retry.Backoff{Min: 200 * time.Millisecond, Max: 30 * time.Second}
		for {
			err := consume(consumeCtx, cfg, start.Add(-cfg.Lookback), log, onChange, func() { problem.Store(nil) })
			if consumeCtx.Err() != nil {
				return
			}
			if err == nil {
				err = errors.New("consumers stopped")
			}
			msg := err.Error()
			problem.Store(&msg)
			wait := backoff.Next()
			log.Error("live table stopped following kafka; retrying", "in", wait, "err", err)
			if !retry.Sleep(consumeCtx, wait) {
				return
			}
		}
	}()

	t := time.NewTicker(cfg.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			stopConsume()
			<-consumed
			if draw != nil {
				draw(true)
				// Whatever is printed next starts below the table.
				fmt.Fprintln(cfg.Out)
			}
			return nil
		case <-t.C:
			if draw != nil {
				draw(false)
			}
		}
	}
}

// consume reads every partition of the topics from the first offset at or
// after since, into the board, until ctx ends or a partition consumer
// fails: then it stops the others and returns the error at once. running
// is called once every partition consumer has started.
func consume(ctx context.Context, cfg Config, since time.Time, log *slog.Logger, onChange func(Change), running func()) error {
	sc := kafkarun.Config(cfg.Sarama)
	client, err := connect(ctx, cfg.Brokers, sc, log)
	if err != nil {
		return err
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fmt.Errorf("dashboard consumer: %w", err)
	}
	defer consumer.Close()

	var wg sync.WaitGroup
	defer wg.Wait()
	// Registered after wg.Wait, so it runs first: a failed partition ends
	// the others.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var errLog retry.RateLog
	errLog.Every = 10 * time.Second
	var errMu sync.Mutex
	topics := cfg.Topics
	if cfg.ChangesTopic != "" {
		topics = append(slices.Clip(topics), cfg.ChangesTopic)
	}
	for _, topic := range topics {
		parts, err := client.Partitions(topic)
		if err != nil {
			return fmt.Errorf("dashboard: partitions of %s: %w", topic, err)
		}
		for _, p := range parts {
			pc, err := consumePartition(client, consumer, topic, p, since)
			if err != nil {
				return err
			}
			wg.Go(func() {
				defer pc.Close()
				for {
					select {
					case <-ctx.Done():
						return
					case m, ok := <-pc.Messages():
						if !ok {
							cancel(fmt.Errorf("dashboard: consumer of %s/%d stopped", topic, p))
							return
						}
						if topic == cfg.ChangesTopic {
							if c, err := codecs.DecodeStatusChange(m.Value); err == nil {
								cfg.Board.AddChange(c)
							}
							continue
						}
						r, err := codecs.DecodeResult(m.Value)
						// An undecodable message goes to the dead letters
						// through the processor. A check older than since
						// can follow the start offset (offsets only follow
						// time roughly): it is left out like the ones before.
						if err != nil || r.CheckedAt.Before(since) {
							continue
						}
						if c, ok := cfg.Board.Add(r); ok {
							onChange(c)
						}
					case err, ok := <-pc.Errors():
						if !ok {
							continue
						}
						// sarama retries these itself; say so, a few times.
						errMu.Lock()
						n, logIt := errLog.Allow(time.Now())
						errMu.Unlock()
						if logIt {
							log.Warn("dashboard consumer error", "topic", topic, "partition", p, "err", err, "errors_since_last_log", n)
						}
					}
				}
			})
		}
	}
	running()
	<-ctx.Done()
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// connect retries until the brokers answer or ctx ends.
func connect(ctx context.Context, brokers []string, sc *sarama.Config, log *slog.Logger) (sarama.Client, error) {
	backoff := retry.Backoff{Min: 200 * time.Millisecond, Max: 5 * time.Second}
	for {
		client, err := sarama.NewClient(brokers, sc)
		if err == nil {
			return client, nil
		}
		log.Debug("dashboard: kafka not reachable yet", "err", err)
		if !retry.Sleep(ctx, backoff.Next()) {
			return nil, fmt.Errorf("dashboard: connect to kafka: %w", err)
		}
	}
}

// consumePartition starts at the first offset whose timestamp is at or
// after since (the newest when there is none), falling back to the oldest
// kept offset when that one was deleted meanwhile.
func consumePartition(client sarama.Client, consumer sarama.Consumer, topic string, p int32, since time.Time) (sarama.PartitionConsumer, error) {
	off, err := client.GetOffset(topic, p, since.UnixMilli())
	if err != nil || off < 0 {
		off = sarama.OffsetNewest
	}
	pc, err := consumer.ConsumePartition(topic, p, off)
	if errors.Is(err, sarama.ErrOffsetOutOfRange) {
		pc, err = consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
	}
	if err != nil {
		return nil, fmt.Errorf("dashboard: consume %s/%d: %w", topic, p, err)
	}
	return pc, nil
}
