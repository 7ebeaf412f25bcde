// Command sitewatch is all of sitewatch in one process, for a laptop: the
// emitter, the processor and the sinks, running the same code as the
// separate commands. Without -brokers it starts an embedded Kafka, and
// without -database-url it stores into an embedded SQLite database, both
// under the data directory, so a second run continues the history of the
// first. On a terminal it shows a live status table of the sites.
//
//	sitewatch -sites examples/sites.yaml
//	sitewatch -sites sites.yaml -data-dir /var/lib/sitewatch -window-size 1m
//	sitewatch -sites sites.yaml -brokers localhost:9092 -database-url postgres://...
//	sitewatch sites ls -api http://127.0.0.1:8080
//	sitewatch sites add https://example.com/ -interval 30s -brokers localhost:9092
//	sitewatch report -month 2026-11 -slo 99.9 [-sites sites.yaml] [-format table|csv|json]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/sitewatch/sitewatch/internal/app"
	"github.com/sitewatch/sitewatch/kafkaconn"
)

func main() {
	kafkaconn.DisableSaramaMetrics() // nothing reads them; they cost CPU per message
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// help is what -h says besides the flags.
var help = app.Help{
	Summary: "watch websites: check them, aggregate the results and store them, all in one process",
	Usage: []string{
		"sitewatch -sites FILE [flags]",
		"sitewatch -demo            (five local demo sites, to try it offline)",
		"sitewatch -sites FILE -brokers HOST:PORT -database-url postgres://...",
		"sitewatch report -month 2026-11 [-slo 99.9] [-sites FILE] [-format table|csv|json]",
	},
	Commands: []string{
		"sitewatch sites ls|add|rm|import FILE|export   manage the sites registry (sitewatch sites -h)",
		"sitewatch report -month YYYY-MM [-slo 99.9]    exact uptime and SLA figures per site (sitewatch report -h)",
	},
	Notes: []string{
		"Left empty, -brokers starts an embedded Kafka (listening on -kafka-listen) and -database-url\n" +
			"an embedded SQLite database, both under -data-dir; a second run continues the history.",
		"The separate commands are cmd/emitter and cmd/processor (processor migrate applies the migrations).",
	},
}

// reportHelp is what `sitewatch report -h` says besides the flags.
var reportHelp = app.Help{
	Summary: "exact uptime and SLA figures per site over a range [from, to), from the raw checks in the store",
	Usage: []string{
		"sitewatch report -month 2026-11 [-slo 99.9] [-sites FILE] [-format table|csv|json]",
		"sitewatch report -from 2026-11-01 -to 2026-11-15 -database-url postgres://...",
	},
	Notes: []string{
		"Without -database-url it reads the SQLite database of -data-dir. Time without checks is\n" +
			"reported as unknown, not as down; the README's \"Uptime and SLA reports\" defines every figure.",
	},
}

// newFlags declares every flag of the command; tests read the same set.
func newFlags() (*flag.FlagSet, *app.AllInOne) {
	fs := flag.NewFlagSet("sitewatch", flag.ContinueOnError)
	a := &app.AllInOne{
		Flags:     fs,
		Kafka:     kafkaconn.RegisterFlags(fs),
		Common:    app.RegisterCommon(fs),
		Emitter:   app.RegisterEmitter(fs),
		Processor: app.RegisterProcessor(fs),
		Local:     app.RegisterLocal(fs),
	}
	// Without -brokers the topics are made with fewer partitions (one
	// process consumes them all); say so where the default is shown.
	if f := fs.Lookup("topic-partitions"); f != nil {
		f.DefValue = fmt.Sprintf("%d with the embedded Kafka, %s with -brokers", app.LocalPartitions, f.DefValue)
	}
	return fs, a
}

// run is the whole program; tests call it with their own context, args
// and writers.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "sites" {
		return app.ExitCode("sitewatch sites", app.RunSites(ctx, args[1:], stdout, stderr), stderr)
	}
	if len(args) > 0 && args[0] == "report" {
		return runReport(ctx, args[1:], stdout, stderr)
	}
	fs, a := newFlags()
	if err := app.ParseFlags(fs, args, help, stdout); err != nil {
		return app.ExitCode("sitewatch", err, stderr)
	}
	if a.Common.PrintVersion("sitewatch", stdout) {
		return app.ExitOK
	}
	a.Kafka.ClientID = "sitewatch"
	a.Stdout, a.Stderr = stdout, stderr
	return app.ExitCode("sitewatch", a.Run(ctx), stderr)
}

// runReport is `sitewatch report`: uptime and SLA figures per site over a
// range, from the store, to stdout.
func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const prog = "sitewatch report"
	fs := flag.NewFlagSet(prog, flag.ContinueOnError)
	f := app.RegisterReport(fs)
	if err := app.ParseFlags(fs, args, reportHelp, stdout); err != nil {
		return app.ExitCode(prog, err, stderr)
	}
	// Warnings only: the report itself is the output.
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := app.SignalContext(ctx, logger)
	defer cancel()
	return app.ExitCode(prog, app.RunReport(ctx, logger, f, time.Now(), stdout), stderr)
}
