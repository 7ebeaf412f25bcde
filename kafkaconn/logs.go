package kafkaconn

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

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

// saramaSink is where sarama's package-level logger writes: set once,
// pointing at the logger of the most recent RouteSaramaLogs call, so that
// several components in one process (or test) never race on the variable.
var (
	saramaOnce sync.Once
	saramaSink atomic.Pointer[slog.Logger]
)

type saramaForwarder struct{}

func (saramaForwarder) Print(v ...any)   { saramaPrinter().Print(v...) }
func (saramaForwarder) Println(v ...any) { saramaPrinter().Println(v...) }
func (saramaForwarder) Printf(format string, v ...any) {
	saramaPrinter().Printf(format, v...)
}

func saramaPrinter() slogPrinter {
	return slogPrinter{l: saramaSink.Load(), level: slog.LevelDebug}
}

// RouteSaramaLogs sends sarama's logs into l at debug level. sarama keeps
// its logger in a package variable; this installs a forwarder once and
// points it at l.
func RouteSaramaLogs(l *slog.Logger) {
	saramaSink.Store(l.With("lib", "sarama"))
	saramaOnce.Do(func() { sarama.Logger = saramaForwarder{} })
}
