package postgres

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sitewatch/sitewatch/codecs"
)

// Results go to PostgreSQL in COPY's binary format, written here rather
// than by pgx's CopyFrom: pgx looks up an encode plan for every value of
// every row through interfaces, and that was about 6 % of cmd/processor's
// CPU while it drained a backlog (bench/processor -perf), next to the
// windows and alerts parts on the same cores. The bytes on the wire are
// the ones pgx sends (the binary send format of each column's type), so
// the server does the same work and refuses the same values; pgx's
// CopyFrom also asks the server for the column types first, a round trip
// per write that this skips, as the types are fixed by the migrations.
//
// The columns, in resultColumnList's order, and their types:
//
//	event_id, url text; scheduled_at, checked_at timestamptz; outcome text;
//	status_code smallint (bigint in the staging table);
//	response_time_ms … transfer_ms double precision (6);
//	body_bytes bigint; regexp text; regexp_matched boolean;
//	error_kind, error_message text; checker text;
//	tls_not_after timestamptz; region text.
//
// The staging table puts pos (bigint) before them.

// The COPY statements of the two tables the rows go to: check_results,
// and the staging table of the deduplicating path, with pos first. Built
// once: every write sends one.
var (
	copyCheckResults = copyResultsSQL(pgx.Identifier{"check_results"}, resultColumnList)
	copyStagedRows   = copyResultsSQL(stagedResultsTable, "pos, "+resultColumnList)
)

func copyResultsSQL(table pgx.Identifier, cols string) string {
	return "COPY " + table.Sanitize() + " (" + strings.Join(strings.Fields(cols), " ") + ") FROM STDIN (FORMAT binary)"
}

// copyResultRows sends rs[idx] by one binary COPY on tx's connection, into
// the staging table when staged (pos is each row's index in idx), and
// returns the rows copied.
func copyResultRows(ctx context.Context, tx pgx.Tx, rs []*codecs.Result, idx []int, staged bool) (int64, error) {
	sql := copyCheckResults
	if staged {
		sql = copyStagedRows
	}
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, &resultStream{rs: rs, idx: idx, staged: staged}, sql)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// pgCopyHeader is the binary COPY signature, flags and header extension
// length.
var pgCopyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// resultStream is the binary COPY data of rs[idx], encoded a row at a time
// as pgconn reads it (64 KiB a read), so that encoding overlaps sending
// and a batch is never held twice in memory.
type resultStream struct {
	rs     []*codecs.Result
	idx    []int
	staged bool
	next   int    // the next row of idx to encode
	buf    []byte // encoded, not yet read
	begun  bool
	ended  bool
}

func (s *resultStream) Read(p []byte) (int, error) {
	if !s.begun {
		s.buf, s.begun = append(s.buf, pgCopyHeader...), true
	}
	for len(s.buf) < len(p) && !s.ended {
		if s.next == len(s.idx) {
			s.buf = binary.BigEndian.AppendUint16(s.buf, 0xffff) // the trailer
			s.ended = true
			break
		}
		var err error
		if s.buf, err = appendResultRow(s.buf, s.rs[s.idx[s.next]], int64(s.next), s.staged); err != nil {
			return 0, err
		}
		s.next++
	}
	n := copy(p, s.buf)
	s.buf = s.buf[:copy(s.buf, s.buf[n:])]
	if s.ended && len(s.buf) == 0 {
		return n, io.EOF
	}
	return n, nil
}

// appendResultRow appends r as one binary COPY tuple.
func appendResultRow(b []byte, r *codecs.Result, pos int64, staged bool) ([]byte, error) {
	fields := uint16(20)
	if staged {
		fields++
	}
	b = binary.BigEndian.AppendUint16(b, fields)
	if staged {
		b = appendInt8(b, pos)
	}
	b = appendText(b, r.EventID)
	b = appendText(b, r.URL)
	b = appendTimestamptz(b, r.ScheduledAt)
	b = appendTimestamptz(b, r.CheckedAt)
	b = appendText(b, r.Outcome)
	if staged {
		// bigint, so that the server refuses an out-of-range code for
		// this row alone (a CHECK), and the batch's other rows go in.
		b = appendInt8(b, int64(r.StatusCode))
	} else {
		if r.StatusCode < math.MinInt16 || r.StatusCode > math.MaxInt16 {
			return nil, fmt.Errorf("status_code %d: smallint out of range", r.StatusCode)
		}
		b = binary.BigEndian.AppendUint32(b, 2)
		b = binary.BigEndian.AppendUint16(b, uint16(int16(r.StatusCode)))
	}
	for _, f := range [...]*float64{r.ResponseTimeMS, r.DNSMS, r.ConnectMS, r.TLSMS, r.TTFBMS, r.TransferMS} {
		if f == nil {
			b = appendNull(b)
			continue
		}
		b = binary.BigEndian.AppendUint32(b, 8)
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(*f))
	}
	b = appendInt8(b, r.BodyBytes)
	b = appendTextPtr(b, r.Regexp)
	switch {
	case r.RegexpMatched == nil:
		b = appendNull(b)
	case *r.RegexpMatched:
		b = append(b, 0, 0, 0, 1, 1)
	default:
		b = append(b, 0, 0, 0, 1, 0)
	}
	b = appendTextPtr(b, r.ErrorKind)
	b = appendTextPtr(b, r.ErrorMessage)
	b = appendText(b, r.Checker)
	if r.TLSNotAfter == nil {
		b = appendNull(b)
	} else {
		b = appendTimestamptz(b, *r.TLSNotAfter)
	}
	return appendText(b, codecs.RegionOrDefault(r.Region)), nil
}

func appendNull(b []byte) []byte { return binary.BigEndian.AppendUint32(b, math.MaxUint32) } // length -1

func appendText(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func appendTextPtr(b []byte, s *string) []byte {
	if s == nil {
		return appendNull(b)
	}
	return appendText(b, *s)
}

func appendInt8(b []byte, v int64) []byte {
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(v))
}

// pgEpochMicros is 2000-01-01 UTC, PostgreSQL's epoch, in microseconds
// since the Unix epoch.
const pgEpochMicros = 946_684_800 * 1_000_000

// appendTimestamptz appends t as microseconds since 2000-01-01 UTC,
// truncated as pgx truncates it.
func appendTimestamptz(b []byte, t time.Time) []byte {
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(t.Unix()*1_000_000+int64(t.Nanosecond())/1000-pgEpochMicros))
}
