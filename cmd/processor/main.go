// Command processor turns check results into five-minute windows and
// writes raw results and windows into PostgreSQL.
//
//	processor -brokers localhost:9092 -database-url postgres://...
//	processor migrate -database-url postgres://...
package main

import (
	"context"
	"flag"
	"io"
	"os"
	"runtime/debug"

	"github.com/sitewatch/sitewatch/internal/app"
	"github.com/sitewatch/sitewatch/kafkaconn"
)

// gcPercent is the processor's GOGC unless the environment sets one (as
// cmd/emitter's): nearly everything it allocates is per-message garbage
// that dies within milliseconds (decoded events, group-table values
// decoded and encoded again, sarama's request buffers), while its live
// heap (the group tables kept in memory, the sinks' batches) changes
// slowly; at Go's default of 100 the collector took about a tenth of its
// CPU draining a backlog.
const gcPercent = 200

func main() {
	kafkaconn.DisableSaramaMetrics() // nothing reads them; they cost CPU per message
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// help and migrateHelp are what -h says besides the flags.
var (
	help = app.Help{
		Summary: "turn check results into five-minute windows and store results and windows in PostgreSQL",
		Usage: []string{
			"processor -brokers HOST:PORT[,...] -database-url postgres://... [flags]",
			"processor migrate -database-url postgres://...",
		},
		Commands: []string{"migrate  apply the database migrations and exit"},
		Notes:    []string{"-database-url may also be sqlite://PATH, a local SQLite database."},
	}
	migrateHelp = app.Help{
		Summary: "apply the database migrations and exit (the processor also applies them at start)",
		Usage:   []string{"processor migrate -database-url postgres://..."},
	}
)

// run is the whole program; tests call it with their own context, args
// and writers.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "migrate" {
		return migrate(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("processor", flag.ContinueOnError)
	kafka := kafkaconn.RegisterFlags(fs)
	common := app.RegisterCommon(fs)
	flags := app.RegisterProcessor(fs)
	app.RegisterProcessorSites(fs, flags)
	if err := app.ParseFlags(fs, args, help, stdout); err != nil {
		return app.ExitCode("processor", err, stderr)
	}
	if common.PrintVersion("processor", stdout) {
		return app.ExitOK
	}
	kafka.ClientID = "sitewatch-processor"
	return app.ExitCode("processor", app.Main(ctx, common, stderr, func(ctx context.Context, env app.Env) error {
		return app.RunProcessor(ctx, env, kafka, flags)
	}), stderr)
}

// migrate is `processor migrate`: apply the migrations and exit.
func migrate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("processor migrate", flag.ContinueOnError)
	common := app.RegisterCommon(fs)
	common.NoKafka = true
	var databaseURL string
	app.RegisterDatabase(fs, &databaseURL)
	if err := app.ParseFlags(fs, args, migrateHelp, stdout); err != nil {
		return app.ExitCode("processor migrate", err, stderr)
	}
	if common.PrintVersion("processor", stdout) {
		return app.ExitOK
	}
	return app.ExitCode("processor migrate", app.Main(ctx, common, stderr, func(ctx context.Context, env app.Env) error {
		return app.RunMigrate(ctx, env, databaseURL)
	}), stderr)
}
