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
package main

import (
	"context"
	"flag"
	"io"
	"os"

	"github.com/sitewatch/sitewatch/internal/app"
	"github.com/sitewatch/sitewatch/kafkaconn"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole program; tests call it with their own context, args
// and writers.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sitewatch", flag.ContinueOnError)
	kafka := kafkaconn.RegisterFlags(fs)
	common := app.RegisterCommon(fs)
	emitter := app.RegisterEmitter(fs)
	processor := app.RegisterProcessor(fs)
	local := app.RegisterLocal(fs)
	if err := app.ParseFlags(fs, args, stderr); err != nil {
		return app.ExitCode("sitewatch", err, stderr)
	}
	if common.PrintVersion("sitewatch", stdout) {
		return app.ExitOK
	}
	kafka.ClientID = "sitewatch"
	a := &app.AllInOne{
		Flags: fs, Common: common, Kafka: kafka, Emitter: emitter, Processor: processor, Local: local,
		Stdout: stdout, Stderr: stderr,
	}
	return app.ExitCode("sitewatch", a.Run(ctx), stderr)
}
