// Command emitter schedules and runs the checks of every site in a sites
// file and puts each result on Kafka. Several instances started with the
// same flags share the work through one consumer group.
//
//	emitter -sites sites.yaml -brokers localhost:9092
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

// gcPercent is the emitter's GOGC unless the environment sets one. Its
// live heap is small and bounded (the sites, the schedule, the bounded
// buffers), while nearly everything it allocates is per-check and
// per-message garbage that dies within milliseconds (net/http connection
// buffers, encoded events): at Go's default of 100 the collector ran a few
// times a second and took a fifth of the emitter's CPU under load. A
// larger heap goal halves that for about half as much heap again above
// the live set.
const gcPercent = 200

func main() {
	kafkaconn.DisableSaramaMetrics() // nothing reads them; they cost CPU per message
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// help is what -h says besides the flags.
var help = app.Help{
	Summary: "schedule and run the checks of every site in a sites file, and put each result on Kafka",
	Usage:   []string{"emitter -sites FILE -brokers HOST:PORT[,...] [flags]"},
	Notes:   []string{"Several emitters started with the same flags share the checks (one consumer group)."},
}

// run is the whole program; tests call it with their own context, args
// and writers.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("emitter", flag.ContinueOnError)
	kafka := kafkaconn.RegisterFlags(fs)
	common := app.RegisterCommon(fs)
	flags := app.RegisterEmitter(fs)
	if err := app.ParseFlags(fs, args, help, stdout); err != nil {
		return app.ExitCode("emitter", err, stderr)
	}
	if common.PrintVersion("emitter", stdout) {
		return app.ExitOK
	}
	kafka.ClientID = "sitewatch-emitter"
	return app.ExitCode("emitter", app.Main(ctx, common, stderr, func(ctx context.Context, env app.Env) error {
		return app.RunEmitter(ctx, env, kafka, flags)
	}), stderr)
}
