package postgres

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
)

// rowError reports whether err is PostgreSQL refusing the data itself, so
// that the row at fault can be rejected and the rest of its batch written.
// Everything else (a lost connection, a timeout, a missing table) is about
// the database, not the row: the whole batch fails and is retried.
//
// The classes: 22 data exception (a NUL byte or invalid UTF-8 in text, a
// number out of range), 23 integrity constraint violation (CHECK, NOT
// NULL), and 54 program limit exceeded, which our fixed statements only
// hit through a value too large for an index (a URL of several kilobytes).
func rowError(err error) (*pgconn.PgError, bool) {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || len(pgErr.Code) != 5 {
		return nil, false
	}
	switch pgErr.Code[:2] {
	case "22", "23", "54":
		return pgErr, true
	}
	return nil, false
}

var whereColumn = regexp.MustCompile(`, column ([a-z_]+)`)

// maxDetail keeps a rejection reason readable in a dead letter.
const maxDetail = 300

// reason turns a server error into a dead letter's reason: what was wrong,
// which column when the server says, and the SQLSTATE to search for.
func reason(e *pgconn.PgError) string {
	var b strings.Builder
	b.WriteString(e.Message)
	column := e.ColumnName
	if column == "" {
		// COPY errors name the column only in the context line.
		if m := whereColumn.FindStringSubmatch(e.Where); m != nil {
			column = m[1]
		}
	}
	if column != "" && !strings.Contains(e.Message, `"`+column+`"`) {
		fmt.Fprintf(&b, " (column %s)", column)
	}
	// "Failing row contains (...)" repeats the whole row, which the dead
	// letter carries anyway.
	if d := e.Detail; d != "" && !strings.HasPrefix(d, "Failing row contains") {
		if len(d) > maxDetail {
			n := maxDetail
			for n > 0 && !utf8.RuneStart(d[n]) {
				n--
			}
			d = d[:n] + "…"
		}
		b.WriteString(": ")
		b.WriteString(d)
	}
	fmt.Fprintf(&b, " (SQLSTATE %s)", e.Code)
	return b.String()
}

// sortedRejected orders rejections by their index in the batch.
func sortedRejected(rs []Rejected) []Rejected {
	slices.SortFunc(rs, func(a, b Rejected) int { return a.Index - b.Index })
	return rs
}
