package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
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
}

// RegisterCommon declares -metrics-addr, -log-level and -log-format.
func RegisterCommon(fs *flag.FlagSet) *CommonFlags {
	c := &CommonFlags{}
	fs.StringVar(&c.MetricsAddr, "metrics-addr", os.Getenv("SITEWATCH_METRICS_ADDR"), "address for /metrics and /healthz, e.g. :9100 (env SITEWATCH_METRICS_ADDR; empty: off)")
	fs.StringVar(&c.LogLevel, "log-level", envOr("SITEWATCH_LOG_LEVEL", "info"), "log level: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", envOr("SITEWATCH_LOG_FORMAT", "text"), "log format: text or json")
	return c
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// ParseFlags parses args, turning flag errors into a UsageError and
// refusing stray positional arguments.
func ParseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &UsageError{err}
	}
	if fs.NArg() > 0 {
		return Usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}
