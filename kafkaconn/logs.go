package kafkaconn

import (
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/IBM/sarama"

	"github.com/sitewatch/sitewatch/internal/kafkarun"
)

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

func saramaPrinter() kafkarun.Printer { return kafkarun.Logger(saramaSink.Load(), "sarama") }

// RouteSaramaLogs sends sarama's logs into l (see kafkarun.Printer for the
// levels). sarama keeps its logger in a package variable; this installs a
// forwarder once and points it at l.
func RouteSaramaLogs(l *slog.Logger) {
	saramaSink.Store(l)
	saramaOnce.Do(func() { sarama.Logger = saramaForwarder{} })
}
