package kafkaconn

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// slogPrinter adapts a *slog.Logger to the Print-style loggers of goka and
// sarama, so library messages land in the same structured log.
type slogPrinter struct {
	l     *slog.Logger
	level slog.Level
}

func (p slogPrinter) Print(v ...any)   { p.emit(fmt.Sprint(v...)) }
func (p slogPrinter) Println(v ...any) { p.emit(fmt.Sprintln(v...)) }
func (p slogPrinter) Printf(format string, v ...any) {
	p.emit(fmt.Sprintf(format, v...))
}

func (p slogPrinter) emit(msg string) {
	p.l.Log(context.Background(), p.level, strings.TrimSpace(msg))
}

// GokaLogger returns a goka logger that writes into l at debug level:
// goka narrates every rebalance and partition state change, which is noise
// at info level but useful when chasing a problem.
func GokaLogger(l *slog.Logger) goka.Logger {
	return slogPrinter{l: l.With("lib", "goka"), level: slog.LevelDebug}
}

// RouteSaramaLogs sends sarama's logs into l at debug level. sarama keeps
// its logger in a package variable, so a main calls this once.
func RouteSaramaLogs(l *slog.Logger) {
	sarama.Logger = slogPrinter{l: l.With("lib", "sarama"), level: slog.LevelDebug}
}
