// Package store keeps questionnaires: their questions (of four kinds)
// and options, each participant's answers, the current question, the
// closed flag, and each question's timer, reveal and hidden text entries.
// The schema's versions are applied in order at open (sqlite_sql.go), so
// that a database an older Lobby wrote is upgraded in place. Store
// is the interface the questionnaire actors use; SQLite is its
// implementation on one SQLite file (modernc.org/sqlite, pure Go).
//
// A Store's methods are safe for concurrent use and take a context: they
// block on the database, so actors call them off their workers (see
// actors/questionnaire/questionnaire.go). Every write is one transaction.
//
// This package may import only the standard library and its database
// driver; it may not import net/http, the actors package, messages or
// transport.
package store
