package kafkarun

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// Printer adapts a *slog.Logger to the printf-style loggers of goka
// (goka.Logger) and sarama (sarama.StdLogger), so library lines land in
// the program's structured log. It is the only such adapter in sitewatch.
//
// goka and sarama narrate every rebalance and partition state change,
// noise at info level but useful when chasing a problem: those lines are
// logged at debug level. Lines that mention an error or a panic are logged
// at warning level, so that what goes wrong inside a library is seen
// without turning debug logging on. (Topic names may say "failed"; goka's
// and sarama's error lines say "error".)
type Printer struct{ L *slog.Logger }

// Logger returns the Printer of l for library lib ("goka", "sarama").
func Logger(l *slog.Logger, lib string) Printer { return Printer{L: l.With("lib", lib)} }

func (p Printer) Print(v ...any)                 { p.log(fmt.Sprint(v...)) }
func (p Printer) Println(v ...any)               { p.log(fmt.Sprintln(v...)) }
func (p Printer) Printf(format string, v ...any) { p.log(fmt.Sprintf(format, v...)) }

func (p Printer) log(msg string) {
	msg = strings.TrimSpace(msg)
	level := slog.LevelDebug
	if lower := strings.ToLower(msg); strings.Contains(lower, "error") || strings.Contains(lower, "panic") {
		level = slog.LevelWarn
	}
	p.L.Log(context.Background(), level, msg)
}
