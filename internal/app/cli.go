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
	"os/signal"
	"strings"
	"syscall"

	"github.com/sitewatch/sitewatch/internal/version"
	"github.com/sitewatch/sitewatch/kafkaconn"
	"github.com/sitewatch/sitewatch/telemetry"
)

// Exit statuses, as the contract fixes them.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// UsageError is a mistake in flags or configuration: the process exits with
// status 2 and the message says what to fix.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef builds a UsageError.
func Usagef(format string, a ...any) error { return &UsageError{fmt.Errorf(format, a...)} }

// ExitCode maps the error a program ended with to its exit status and
// writes it to stderr as one line.
func ExitCode(prog string, err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, context.Canceled) {
		return ExitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return ExitUsage
	}
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	fmt.Fprintf(stderr, "%s: %s\n", prog, msg)
	var ue *UsageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	return ExitFailure
}

// SignalContext returns a context cancelled by the first SIGINT or SIGTERM.
// A second signal exits at once with status 1, for a shutdown that hangs.
func SignalContext(parent context.Context, logger *slog.Logger) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		defer signal.Stop(ch)
		select {
		case s := <-ch:
			logger.Info("shutting down; signal again to force", "signal", s.String())
			cancel()
		case <-ctx.Done():
			return
		}
		select {
		case <-ch:
			logger.Error("forced exit")
			os.Exit(ExitFailure)
		case <-parent.Done():
		}
	}()
	return ctx, cancel
}

// CommonFlags are the flags every sitewatch program has besides Kafka's.
type CommonFlags struct {
	MetricsAddr string
	LogLevel    string
	LogFormat   string
	Version     bool
}

// RegisterCommon declares -metrics-addr, -log-level, -log-format and -version.
func RegisterCommon(fs *flag.FlagSet) *CommonFlags {
	c := &CommonFlags{}
	fs.StringVar(&c.MetricsAddr, "metrics-addr", os.Getenv("SITEWATCH_METRICS_ADDR"), "address for /metrics and /healthz, e.g. :9100 (env SITEWATCH_METRICS_ADDR; empty: off)")
	fs.StringVar(&c.LogLevel, "log-level", envOr("SITEWATCH_LOG_LEVEL", "info"), "log level: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", envOr("SITEWATCH_LOG_FORMAT", "text"), "log format: text or json")
	fs.BoolVar(&c.Version, "version", false, "print the version (module version and VCS revision) and exit")
	return c
}

// PrintVersion writes prog's version line to stdout when -version was
// given and reports whether it did; the program then exits 0 before it
// connects to anything or checks its other flags' values.
func (c *CommonFlags) PrintVersion(prog string, stdout io.Writer) bool {
	if !c.Version {
		return false
	}
	fmt.Fprintln(stdout, version.Line(prog))
	return true
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// ParseFlags parses args, turning flag errors into a UsageError and
// refusing stray positional arguments.
func ParseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fs.Usage()
			return err
		}
		return &UsageError{err}
	}
	if fs.NArg() > 0 {
		return Usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// Main builds the logger, metrics registry and health report, serves
// -metrics-addr, installs the signal handling and runs body until it
// returns or a signal arrives.
func Main(parent context.Context, common *CommonFlags, stderr io.Writer, body func(context.Context, Env) error) error {
	logger, err := telemetry.NewLogger(stderr, common.LogFormat, common.LogLevel)
	if err != nil {
		return &UsageError{err}
	}
	kafkaconn.RouteSaramaLogs(logger)
	env := Env{Logger: logger, Registry: telemetry.NewRegistry(), Health: telemetry.NewHealth()}
	ctx, cancel := SignalContext(parent, logger)
	defer cancel()

	// The metrics listener is opened before anything else starts, so a
	// taken port is a clear error at start rather than a log line later.
	srvCtx, stopSrv := context.WithCancel(context.Background())
	defer stopSrv()
	srvErr := make(chan error, 1)
	if common.MetricsAddr != "" {
		ln, err := net.Listen("tcp", common.MetricsAddr)
		if err != nil {
			return fmt.Errorf("-metrics-addr %s: %w", common.MetricsAddr, err)
		}
		go func() { srvErr <- telemetry.ServeListener(srvCtx, ln, env.Registry, env.Health, logger) }()
	} else {
		srvErr <- nil
	}
	err = body(ctx, env)
	stopSrv()
	if serr := <-srvErr; serr != nil && err == nil {
		err = serr
	}
	return err
}
