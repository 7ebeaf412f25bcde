package app

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sitewatch/sitewatch/config"
	sla "github.com/sitewatch/sitewatch/report" // app has a func report (sites.go)
	"github.com/sitewatch/sitewatch/sinks/postgres"
	"github.com/sitewatch/sitewatch/sinks/sqlite"
)

// ReportFlags are the flags of `sitewatch report`.
type ReportFlags struct {
	DatabaseURL string
	DataDir     string
	Month       string
	From, To    string
	Format      string
	SLO         string
	Sites       string
}

// RegisterReport declares the flags of `sitewatch report` on fs.
func RegisterReport(fs *flag.FlagSet) *ReportFlags {
	f := &ReportFlags{}
	RegisterDatabase(fs, &f.DatabaseURL)
	fs.StringVar(&f.DataDir, "data-dir", envOr("SITEWATCH_DATA_DIR", "./"+DefaultDataDir),
		"the all-in-one's data directory, whose SQLite database is read when no -database-url is given (env SITEWATCH_DATA_DIR)")
	fs.StringVar(&f.Month, "month", "", "a UTC calendar month, e.g. 2026-11 (instead of -from/-to)")
	fs.StringVar(&f.From, "from", "", "start of the range, RFC 3339 (2026-11-01T00:00:00Z) or a date (2026-11-01, midnight UTC); default: the start of this month")
	fs.StringVar(&f.To, "to", "", "end of the range, exclusive, RFC 3339 or a date; default: now")
	fs.StringVar(&f.Format, "format", sla.FormatTable, "output: "+strings.Join(sla.Formats, ", "))
	fs.StringVar(&f.SLO, "slo", "", "service level objective in percent, e.g. 99.9: adds the error budget left")
	fs.StringVar(&f.Sites, "sites", "", "sites file for names and intervals (and sites without checks); without it intervals are inferred")
	return f
}

// RunReport is `sitewatch report`: it reads the checks of the range from
// the store and writes the report to stdout. It only reads.
func RunReport(ctx context.Context, logger *slog.Logger, f *ReportFlags, now time.Time, stdout io.Writer) error {
	if !isFormat(f.Format) {
		return Usagef("-format: %q: want %s", f.Format, strings.Join(sla.Formats, ", "))
	}
	opts, err := sla.ParseOptions(f.Month, f.From, f.To, f.SLO, now)
	if fe := (*sla.FieldError)(nil); errors.As(err, &fe) {
		return Usagef("-%s: %s", fe.Field, fe.Msg)
	} else if err != nil {
		return err
	}
	if f.Sites != "" {
		file, err := config.Load(f.Sites)
		if err != nil {
			return &UsageError{fmt.Errorf("-sites: %w", err)}
		}
		for _, s := range file.Sites {
			opts.Sites = append(opts.Sites, sla.Site{URL: s.URL, Name: s.Name, Interval: s.Interval})
		}
	}
	src, closeSrc, err := openReportSource(ctx, logger, f)
	if err != nil {
		return err
	}
	defer closeSrc()
	rep, err := sla.Build(ctx, src, opts)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	// Written whole at the end: a failure half-way never leaves half a
	// report on stdout.
	var buf bytes.Buffer
	if err := sla.Write(&buf, rep, f.Format); err != nil {
		return err
	}
	_, err = stdout.Write(buf.Bytes())
	return err
}

func isFormat(s string) bool {
	for _, f := range sla.Formats {
		if s == f {
			return true
		}
	}
	return false
}

// openReportSource opens the store the report reads: -database-url when
// given, else the data directory's SQLite file, which must exist (a report
// never creates a database). Errors never show the URL: it may carry a
// password.
func openReportSource(ctx context.Context, logger *slog.Logger, f *ReportFlags) (sla.Source, func(), error) {
	path, isSQLite := strings.CutPrefix(f.DatabaseURL, sqlitePrefix)
	if f.DatabaseURL == "" {
		path, isSQLite = filepath.Join(f.DataDir, dataSQLite), true
		if _, err := os.Stat(path); err != nil {
			return nil, nil, Usagef("-data-dir %s: no sitewatch database in it (%s); pass the directory sitewatch ran with, or -database-url", f.DataDir, dataSQLite)
		}
	}
	if isSQLite {
		if _, err := os.Stat(path); err != nil {
			return nil, nil, Usagef("-database-url: sqlite database %s does not exist", path)
		}
		s, err := sqlite.Open(ctx, path, logger)
		if err != nil {
			return nil, nil, err
		}
		return s, func() { _ = s.Close() }, nil
	}
	if err := checkDatabaseURL(f.DatabaseURL); err != nil {
		return nil, nil, err
	}
	// A month of thousands of sites is one long query: no statement
	// timeout (Ctrl-C stops it), unless the URL sets its own.
	opts := postgres.Options{MaxConns: 1, Logger: logger, StatementTimeout: -1}
	if strings.Contains(f.DatabaseURL, "statement_timeout") {
		opts.StatementTimeout = 0
	}
	s, err := postgres.Open(ctx, f.DatabaseURL, opts)
	if pe := (*pgconn.ParseConfigError)(nil); errors.As(err, &pe) {
		return nil, nil, Usagef("-database-url: not a valid PostgreSQL URL or key=value string (not shown: it may hold a password)")
	} else if err != nil {
		return nil, nil, fmt.Errorf("postgresql: %w", err)
	}
	return s, s.Close, nil
}
