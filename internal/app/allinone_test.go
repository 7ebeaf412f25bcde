package app

import (
	"strings"
	"testing"
)

// TestStopMessage: the last line says where the history really is: the
// data directory for the embedded store, PostgreSQL (without its URL,
// which may hold a password) otherwise.
func TestStopMessage(t *testing.T) {
	dir := &DataDir{Path: "/data/sw"}
	embedded := (&AllInOne{Processor: &ProcessorFlags{DatabaseURL: dir.SQLiteURL()}}).stopMessage(dir, true)
	if !strings.Contains(embedded, "the history is kept in /data/sw ") {
		t.Errorf("embedded store: %q", embedded)
	}
	pg := (&AllInOne{Processor: &ProcessorFlags{DatabaseURL: "postgres://app:secret@db/sw"}}).stopMessage(dir, false)
	if !strings.Contains(pg, "the history is kept in PostgreSQL ") || strings.Contains(pg, "secret") || strings.Contains(pg, "kept in /data/sw") {
		t.Errorf("PostgreSQL store: %q", pg)
	}
}
