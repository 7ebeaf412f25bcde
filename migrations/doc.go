// Package migrations holds sitewatch's PostgreSQL schema as golang-migrate
// SQL files (NNNNNN_name.up.sql / .down.sql) and embeds them in the binary,
// so that `processor` and `processor migrate` apply exactly the schema they
// were built with. sinks/postgres runs them; nothing else should.
//
// A migration file is never edited after it has landed: a schema change is
// a new pair of files. Every file runs as one multi-statement Exec, which
// PostgreSQL executes as a single implicit transaction, so a failed
// migration leaves the schema as it was before that file.
package migrations

import "embed"

// FS holds every migration file, at the root of the file system.
//
//go:embed *.sql
var FS embed.FS
