package dashboard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/sitewatch/sitewatch/codecs"
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
	Board  *Board
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

	var draw func(stopping bool)
	if cfg.Terminal {
		draw = func(stopping bool) {
			l := Layout{Title: cfg.Title, Paths: cfg.Paths, Grace: cfg.Grace, Color: cfg.Color}
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
			log.Info("site up", "site", c.Name, "url", c.URL, "checked_at", c.At)
		} else {
			log.Warn("site down", "site", c.Name, "url", c.URL, "checked_at", c.At, "error_kind", c.ErrorKind, "error", c.ErrorMessage)
		}
	}

	consumeErr := make(chan error, 1)
	consumeCtx, stopConsume := context.WithCancel(ctx)
	defer stopConsume()
	go func() { consumeErr <- consume(consumeCtx, cfg, start.Add(-cfg.Lookback), log, onChange) }()

	t := time.NewTicker(cfg.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			stopConsume()
			<-consumeErr
			if draw != nil {
				draw(true)
				// Whatever is printed next starts below the table.
				fmt.Fprintln(cfg.Out)
			}
			return nil
		case err := <-consumeErr:
			// The table is a convenience: when it cannot read Kafka the
			// pipeline goes on, and the reason is in the log.
			if err != nil {
				log.Error("live table stopped", "err", err)
			}
			consumeErr = nil
		case <-t.C:
			if draw != nil {
				draw(false)
			}
		}
	}
}

// consume reads every partition of the topics from the first offset at or
// after since, into the board.
func consume(ctx context.Context, cfg Config, since time.Time, log *slog.Logger, onChange func(Change)) error {
	sc := sarama.NewConfig()
	if cfg.Sarama != nil {
		c := *cfg.Sarama
		sc = &c
	}
	sc.Consumer.Return.Errors = true
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
	for _, topic := range cfg.Topics {
		parts, err := client.Partitions(topic)
		if err != nil {
			return fmt.Errorf("dashboard: partitions of %s: %w", topic, err)
		}
		for _, p := range parts {
			pc, err := consumePartition(client, consumer, topic, p, since)
			if err != nil {
				return err
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer pc.Close()
				for {
					select {
					case <-ctx.Done():
						return
					case m := <-pc.Messages():
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
					case err := <-pc.Errors():
						log.Debug("dashboard consumer", "topic", topic, "partition", p, "err", err)
					}
				}
			}()
		}
	}
	<-ctx.Done()
	return nil
}

// connect retries until the brokers answer or ctx ends.
func connect(ctx context.Context, brokers []string, sc *sarama.Config, log *slog.Logger) (sarama.Client, error) {
	wait := 200 * time.Millisecond
	for {
		client, err := sarama.NewClient(brokers, sc)
		if err == nil {
			return client, nil
		}
		log.Debug("dashboard: kafka not reachable yet", "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("dashboard: connect to kafka: %w", err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
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
