package windows

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/lovoo/goka"
)

// LibraryLogger adapts l to the printf-style logger interface that goka
// (goka.Logger) and sarama (sarama.StdLogger) log through, so that their
// lines reach the program's structured log. Lines that mention an error or
// a panic are logged at warning level, the rest at info level.
//
// New passes one to goka itself. sarama only has a package-level logger
// (sarama.Logger); setting it is left to the program's main, once.
func LibraryLogger(l *slog.Logger) goka.Logger {
	return libLogger{l: l}
}

type libLogger struct{ l *slog.Logger }

func (g libLogger) Print(v ...any)                 { g.log(fmt.Sprint(v...)) }
func (g libLogger) Println(v ...any)               { g.log(fmt.Sprintln(v...)) }
func (g libLogger) Printf(format string, v ...any) { g.log(fmt.Sprintf(format, v...)) }

func (g libLogger) log(msg string) {
	msg = strings.TrimSpace(msg)
	// Topic names may say "failed"; goka's and sarama's error lines say
	// "error".
	if lower := strings.ToLower(msg); strings.Contains(lower, "error") || strings.Contains(lower, "panic") {
		g.l.Warn(msg)
		return
	}
	g.l.Info(msg)
}
