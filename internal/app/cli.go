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
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sitewatch/sitewatch/internal/typo"
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
		return ExitOK // -h asked for the help, which went to stdout
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
	// UnhealthyAfter is how long a store or Kafka delivery outage lasts
	// before /healthz reports it.
	UnhealthyAfter time.Duration
	Version        bool
	// NoKafka marks a command that never talks to Kafka (processor
	// migrate): Main then leaves sarama's process-wide logger alone, so
	// that another component's Kafka chatter in the same process cannot
	// land on this command's stderr.
	NoKafka bool
	// envErr is a variable that does not parse as its flag's type; Main
	// refuses to start with it rather than silently use the default.
	envErr error
}

// RegisterCommon declares -metrics-addr, -log-level, -log-format and -version.
func RegisterCommon(fs *flag.FlagSet) *CommonFlags {
	c := &CommonFlags{}
	fs.StringVar(&c.MetricsAddr, "metrics-addr", os.Getenv("SITEWATCH_METRICS_ADDR"), "address for /metrics and /healthz, e.g. :9100 (env SITEWATCH_METRICS_ADDR; empty: off)")
	fs.StringVar(&c.LogLevel, "log-level", envOr("SITEWATCH_LOG_LEVEL", "info"), "log level: debug, info, warn, error (env SITEWATCH_LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", envOr("SITEWATCH_LOG_FORMAT", "text"), "log format: text or json (env SITEWATCH_LOG_FORMAT)")
	fs.DurationVar(&c.UnhealthyAfter, "unhealthy-after", telemetry.DefaultOutageAfter, "how long store writes or Kafka deliveries must fail before /healthz answers 503 (env SITEWATCH_UNHEALTHY_AFTER)")
	if v := os.Getenv("SITEWATCH_UNHEALTHY_AFTER"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			c.envErr = fmt.Errorf("SITEWATCH_UNHEALTHY_AFTER: %q is not a duration (e.g. 30s, 2m)", v)
		}
		c.UnhealthyAfter = d
		fs.Lookup("unhealthy-after").DefValue = d.String()
	}
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

// Help is what -h prints around the flags.
type Help struct {
	// Summary is one line: what the command does.
	Summary string
	// Usage lines, each a whole command line.
	Usage []string
	// Commands are the subcommands, each "name  what it does".
	Commands []string
	// Notes follow the usage: what an empty flag means, and the like.
	Notes []string
}

// ParseFlags parses args, turning flag errors into a UsageError that says
// what to fix (the nearest flag for a misspelt one, the missing unit of a
// duration) and refusing stray positional arguments. -h prints help and
// the flags to stdout and returns flag.ErrHelp (exit status 0).
func ParseFlags(fs *flag.FlagSet, args []string, help Help, stdout io.Writer) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(fs, help, stdout)
			return err
		}
		return &UsageError{explainFlagError(fs, err)}
	}
	if fs.NArg() > 0 {
		return Usagef("unexpected argument %q (flags start with -; -h lists them)", fs.Arg(0))
	}
	return nil
}

func printHelp(fs *flag.FlagSet, help Help, w io.Writer) {
	fmt.Fprintf(w, "%s: %s\n\nUsage:\n", fs.Name(), help.Summary)
	for _, u := range help.Usage {
		fmt.Fprintf(w, "  %s\n", u)
	}
	if len(help.Commands) > 0 {
		fmt.Fprintf(w, "\nCommands:\n")
		for _, c := range help.Commands {
			fmt.Fprintf(w, "  %s\n", c)
		}
	}
	for _, n := range help.Notes {
		fmt.Fprintf(w, "\n%s\n", n)
	}
	fmt.Fprintf(w, "\nFlags (each may also be set by the environment variable it names):\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

var (
	undefinedFlag = regexp.MustCompile(`^flag provided but not defined: -(.+)$`)
	invalidValue  = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for flag -([^:]+): `)
)

// explainFlagError rewrites the flag package's errors so that they say
// what to do: "-site: no such flag; did you mean -sites?", or a duration
// given without its unit.
func explainFlagError(fs *flag.FlagSet, err error) error {
	msg := err.Error()
	if m := undefinedFlag.FindStringSubmatch(msg); m != nil {
		if near := nearestFlag(fs, m[1]); near != "" {
			return fmt.Errorf("-%s: no such flag; did you mean -%s? (-h lists them)", m[1], near)
		}
		return fmt.Errorf("-%s: no such flag (-h lists them)", m[1])
	}
	if m := invalidValue.FindStringSubmatch(msg); m != nil {
		if f := fs.Lookup(m[2]); f != nil {
			if g, ok := f.Value.(flag.Getter); ok {
				if _, isDuration := g.Get().(time.Duration); isDuration {
					if _, numErr := strconv.ParseFloat(m[1], 64); numErr == nil {
						return fmt.Errorf("-%s: %q has no unit; write e.g. %ss or %sms", m[2], m[1], m[1], m[1])
					}
					return fmt.Errorf("-%s: %q is not a duration (e.g. 30s, 5m, 1h30m)", m[2], m[1])
				}
			}
		}
	}
	return err
}

// nearestFlag is the defined flag closest to name: one it starts, one
// that starts it, or one at most a third of its letters away; the first
// in alphabetical order among equals.
func nearestFlag(fs *flag.FlagSet, name string) string {
	best, bestDist := "", len(name)/3+1
	fs.VisitAll(func(f *flag.Flag) {
		d := typo.Distance(name, f.Name)
		if strings.HasPrefix(f.Name, name) || strings.HasPrefix(name, f.Name) {
			d = min(d, 1)
		}
		if d < bestDist { // VisitAll goes in alphabetical order
			best, bestDist = f.Name, d
		}
	})
	return best
}

// Main builds the logger, metrics registry and health report, serves
// -metrics-addr, installs the signal handling and runs body until it
// returns or a signal arrives.
func Main(parent context.Context, common *CommonFlags, stderr io.Writer, body func(context.Context, Env) error) error {
	if common.envErr != nil {
		return &UsageError{common.envErr}
	}
	logger, err := telemetry.NewLogger(stderr, common.LogFormat, common.LogLevel)
	if err != nil {
		return &UsageError{err}
	}
	if !common.NoKafka {
		kafkaconn.RouteSaramaLogs(logger)
	}
	env := Env{Logger: logger, Registry: telemetry.NewRegistry(), Health: telemetry.NewHealth(), OutageAfter: common.UnhealthyAfter}
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
