package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go
	sqlite3 "modernc.org/sqlite/lib"
)

// FileName is the SQLite file a data directory holds.
const FileName = "lobby.db"

// busyTimeout is how long a write waits for another writer before it fails
// with SQLITE_BUSY. Writes are short (one batch of answers), so waiting
// this long means something is wrong.
const busyTimeout = 5 * time.Second

// DefaultMaxBytes is the size OpenSQLite lets a database grow to.
const DefaultMaxBytes = 1 << 30

// pageSize is the page size Lobby's databases are created with (SQLite's
// default), from which a byte limit becomes a page count.
const pageSize = 4096

// maxWALBytes is what the write-ahead log is cut back to after a
// checkpoint. A checkpoint cannot pass a reader that is still reading, so
// under steady reads and writes the log grows (issue 21, finding 6: 234 MB
// beside a 2.4 MB database); without a limit it keeps that size for good.
const maxWALBytes = 32 << 20

// SQLite is the Store on one SQLite file, opened in WAL mode: readers do
// not wait for the writer, and a commit appends to the log without
// rewriting the database. synchronous=NORMAL makes a commit durable
// against a crash of the process (what "a restart loses nothing" needs)
// without an fsync per commit; a power loss may lose the last commits.
type SQLite struct {
	db   *sql.DB
	path string
	// lock is the data directory's lock file, held while the store is
	// open: two processes on one database would each keep state in
	// memory that the other's writes contradict.
	lock *os.File
	// createPages is the page count past which Create refuses: a tenth
	// of the limit stays for the answers of questionnaires already made,
	// so that filling the store with new ones does not stop those.
	createPages int64
}

// LockName is the lock file a data directory holds while a store is open.
const LockName = "lobby.lock"

// ErrLocked is returned when another process has the data directory open.
var ErrLocked = errors.New("store: the data directory is in use by another Lobby process")

var _ Store = (*SQLite)(nil)

// OpenSQLite opens the store in dir, creating dir and the database if they
// do not exist, and brings the schema up to date. The error says what is
// wrong with dir: not a directory, not writable, not a Lobby database,
// written by a newer Lobby.
func OpenSQLite(ctx context.Context, dir string) (*SQLite, error) {
	return OpenSQLiteLimit(ctx, dir, DefaultMaxBytes)
}

// OpenSQLiteLimit is OpenSQLite for a database that may grow to maxBytes
// (its write-ahead log aside); past it, writes fail with ErrFull, so that
// the creates of one busy address cannot fill the disk every other
// service on it needs.
func OpenSQLiteLimit(ctx context.Context, dir string, maxBytes int64) (*SQLite, error) {
	if maxBytes < pageSize {
		return nil, fmt.Errorf("store: a size limit of %d bytes is less than a page (%d bytes)", maxBytes, pageSize)
	}
	if dir == "" {
		return nil, errors.New("store: no data directory given")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create data directory: %w", err)
	}
	abs, err := filepath.Abs(filepath.Join(dir, FileName))
	if err != nil {
		return nil, fmt.Errorf("store: data directory %q: %w", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	query := url.Values{"_pragma": {
		"busy_timeout(" + fmt.Sprint(busyTimeout.Milliseconds()) + ")",
		"journal_mode(WAL)",
		"synchronous(NORMAL)",
		"foreign_keys(1)",
		"page_size(" + fmt.Sprint(pageSize) + ")",
		"max_page_count(" + fmt.Sprint(maxBytes/pageSize) + ")",
		"journal_size_limit(" + fmt.Sprint(maxWALBytes) + ")",
	}}
	dsn := "file:" + (&url.URL{Path: abs}).EscapedPath() + "?" + query.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("store: open %s: %w", abs, err)
	}
	s := &SQLite{db: db, path: abs, lock: lock, createPages: maxBytes / pageSize * 9 / 10}
	if err := s.check(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: open %s: %w", abs, err)
	}
	return s, nil
}

// lockDir takes dir's lock file, or fails at once with ErrLocked.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, LockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: data directory lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s is locked): give each process its own --data-dir", ErrLocked, path)
		}
		return nil, fmt.Errorf("store: lock %s: %w", path, err)
	}
	return f, nil
}

// check refuses a damaged database at start, rather than serve and answer
// every questionnaire call with an error.
func (s *SQLite) check(ctx context.Context) error {
	var res string
	if err := s.db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&res); err != nil {
		return fmt.Errorf("store: %s is not a database Lobby can read: %w; restore it from a backup or move it away", s.path, err)
	}
	if res != "ok" {
		return fmt.Errorf("store: %s is damaged (%s); restore it from a backup or move it away", s.path, res)
	}
	return nil
}

// Path is the database file's absolute path.
func (s *SQLite) Path() string { return s.path }

// Close implements Store.
func (s *SQLite) Close() error {
	err := s.db.Close()
	// Closing the file releases the lock, once the database is closed.
	s.lock.Close()
	if err != nil {
		return fmt.Errorf("store: close %s: %w", s.path, err)
	}
	return nil
}

// migrate applies the migrations the database lacks, in order, in one
// transaction: a failed start leaves the schema as it was.
func (s *SQLite) migrate(ctx context.Context) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, sqlCreateVersionTable); err != nil {
			return err
		}
		var version int
		err := tx.QueryRowContext(ctx, sqlSelectVersion).Scan(&version)
		if errors.Is(err, sql.ErrNoRows) {
			_, err = tx.ExecContext(ctx, sqlInsertVersion)
		}
		if err != nil {
			return err
		}
		if version > len(migrations) {
			return fmt.Errorf("schema version %d is newer than this Lobby's %d: run a newer Lobby, or another --data-dir", version, len(migrations))
		}
		for v := version; v < len(migrations); v++ {
			if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
				return fmt.Errorf("migrate to schema version %d: %w", v+1, err)
			}
		}
		_, err = tx.ExecContext(ctx, sqlUpdateVersion, len(migrations))
		return err
	})
}

// write runs f in a transaction and commits it, or rolls it back when f
// fails.
func (s *SQLite) write(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback() // the error that matters is f's
		return full(err)
	}
	return full(tx.Commit())
}

// full marks err as ErrFull when SQLite had no room for the write.
func full(err error) error {
	var e *sqlite.Error
	if errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_FULL {
		return fmt.Errorf("%w: %w", ErrFull, err)
	}
	return err
}

// Create implements Store.
func (s *SQLite) Create(ctx context.Context, q Questionnaire) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		var pages int64
		if err := tx.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
			return err
		}
		if pages >= s.createPages {
			return fmt.Errorf("%w: %d of its %d pages for new questionnaires used", ErrFull, pages, s.createPages)
		}
		res, err := tx.ExecContext(ctx, sqlInsertQuestionnaire, q.ID, q.Title, q.TokenHash, q.Created.UnixMilli())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return cmpErr(err, ErrExists)
		}
		for i, question := range q.Questions {
			kind := question.Kind
			if kind == "" {
				kind = KindSingle
			}
			var maxChoices, scaleMin, scaleMax, maxLength sql.NullInt64
			var low, high sql.NullString
			switch kind {
			case KindMulti:
				maxChoices = sql.NullInt64{Int64: int64(question.MaxChoices), Valid: true}
			case KindScale:
				scaleMin = sql.NullInt64{Int64: int64(question.Min), Valid: true}
				scaleMax = sql.NullInt64{Int64: int64(question.Max), Valid: true}
				if len(question.Labels) == 2 {
					low = sql.NullString{String: question.Labels[0], Valid: true}
					high = sql.NullString{String: question.Labels[1], Valid: true}
				}
			case KindText:
				maxLength = sql.NullInt64{Int64: int64(question.MaxLength), Valid: true}
			}
			if _, err := tx.ExecContext(ctx, sqlInsertQuestion, q.ID, i, question.Text, kind,
				maxChoices, scaleMin, scaleMax, low, high, maxLength); err != nil {
				return err
			}
			for j, option := range question.Options {
				if _, err := tx.ExecContext(ctx, sqlInsertOption, q.ID, i, j, option); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: create questionnaire %s: %w", q.ID, err)
	}
	return nil
}

// cmpErr returns err if it is not nil, else fallback.
func cmpErr(err, fallback error) error {
	if err != nil {
		return err
	}
	return fallback
}

// Questionnaire implements Store.
func (s *SQLite) Questionnaire(ctx context.Context, id string) (Questionnaire, error) {
	q := Questionnaire{ID: id}
	var created int64
	err := s.db.QueryRowContext(ctx, sqlSelectQuestionnaire, id).Scan(&q.Title, &q.TokenHash, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Questionnaire{}, ErrNotFound
	}
	if err != nil {
		return Questionnaire{}, fmt.Errorf("store: read questionnaire %s: %w", id, err)
	}
	q.Created = time.UnixMilli(created)
	// The definition never changes after Create, which wrote it in one
	// transaction: reads outside a transaction see all of it.
	err = scanRows(ctx, s.db, sqlSelectQuestions, []any{id}, func(rows *sql.Rows) error {
		var question Question
		var maxChoices, scaleMin, scaleMax, maxLength sql.NullInt64
		var low, high sql.NullString
		if err := rows.Scan(&question.Text, &question.Kind, &maxChoices, &scaleMin, &scaleMax, &low, &high, &maxLength); err != nil {
			return err
		}
		question.MaxChoices, question.Min, question.Max = int(maxChoices.Int64), int(scaleMin.Int64), int(scaleMax.Int64)
		question.MaxLength = int(maxLength.Int64)
		if low.Valid && high.Valid {
			question.Labels = []string{low.String, high.String}
		}
		q.Questions = append(q.Questions, question)
		return nil
	})
	if err == nil {
		err = scanRows(ctx, s.db, sqlSelectOptions, []any{id}, func(rows *sql.Rows) error {
			var question int
			var option string
			if err := rows.Scan(&question, &option); err != nil {
				return err
			}
			if question < 0 || question >= len(q.Questions) {
				return fmt.Errorf("option of question %d, which does not exist", question)
			}
			q.Questions[question].Options = append(q.Questions[question].Options, option)
			return nil
		})
	}
	if err != nil {
		return Questionnaire{}, fmt.Errorf("store: read questionnaire %s: %w", id, err)
	}
	return q, nil
}

// read runs f in a read transaction: every query sees the same snapshot.
func (s *SQLite) read(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a read-only transaction has nothing to undo
	return f(tx)
}

// readState reads the current question and the closed flag.
func readState(ctx context.Context, tx *sql.Tx, id string) (current int, closed bool, err error) {
	var cur sql.NullInt64
	err = tx.QueryRowContext(ctx, sqlSelectState, id).Scan(&cur, &closed)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, ErrNotFound
	}
	if err != nil {
		return 0, false, err
	}
	current = NoQuestion
	if cur.Valid {
		current = int(cur.Int64)
	}
	return current, closed, nil
}

// State implements Store.
func (s *SQLite) State(ctx context.Context, id string) (State, error) {
	var st State
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		if st.Current, st.Closed, err = readState(ctx, tx, id); err != nil {
			return err
		}
		err = scanRows(ctx, tx, sqlSelectQuestionStates, []any{id}, func(rows *sql.Rows) error {
			var qs QuestionState
			var closesAt sql.NullInt64
			if err := rows.Scan(&closesAt, &qs.Revealed); err != nil {
				return err
			}
			if closesAt.Valid {
				qs.ClosesAt = time.UnixMilli(closesAt.Int64)
			}
			st.Questions = append(st.Questions, qs)
			return nil
		})
		if err != nil {
			return err
		}
		err = scanRows(ctx, tx, sqlSelectHidden, []any{id}, func(rows *sql.Rows) error {
			var h Hide
			if err := rows.Scan(&h.Question, &h.Key); err != nil {
				return err
			}
			if h.Question < 0 || h.Question >= len(st.Questions) {
				return fmt.Errorf("hidden entry of question %d, which does not exist", h.Question)
			}
			st.Questions[h.Question].Hidden = append(st.Questions[h.Question].Hidden, h.Key)
			return nil
		})
		if err != nil {
			return err
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return State{}, err
	}
	if err != nil {
		return State{}, fmt.Errorf("store: read state of %s: %w", id, err)
	}
	return st, nil
}

// scanAnswer reads a row of columns before, then an answer's option,
// options, value and text into a, then after.
func scanAnswer(rows *sql.Rows, a *Answer, before []any, after ...any) error {
	var option, value sql.NullInt64
	var options, text sql.NullString
	dest := append(append(before, &option, &options, &value, &text), after...)
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	a.Option, a.Value, a.Text, a.Options = NoOption, int(value.Int64), text.String, nil
	if option.Valid {
		a.Option = int(option.Int64)
	}
	if options.Valid {
		var err error
		if a.Options, err = parseOptions(options.String); err != nil {
			return err
		}
	}
	return nil
}

// Tally implements Store.
func (s *SQLite) Tally(ctx context.Context, id string) ([]AnswerCount, error) {
	var counts []AnswerCount
	err := scanRows(ctx, s.db, sqlSelectTally, []any{id}, func(rows *sql.Rows) error {
		var c AnswerCount
		if err := scanAnswer(rows, &c.Answer, []any{&c.Question}, &c.Count); err != nil {
			return err
		}
		counts = append(counts, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: tally %s: %w", id, err)
	}
	return counts, nil
}

// Answers implements Store.
func (s *SQLite) Answers(ctx context.Context, id, participant string) ([]Answer, error) {
	var answers []Answer
	err := scanRows(ctx, s.db, sqlSelectParticipantAnswers, []any{id, participant}, func(rows *sql.Rows) error {
		a := Answer{Participant: participant}
		if err := scanAnswer(rows, &a, []any{&a.Question}); err != nil {
			return err
		}
		answers = append(answers, a)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: answers of %s in %s: %w", participant, id, err)
	}
	return answers, nil
}

// AddParticipant implements Store.
func (s *SQLite) AddParticipant(ctx context.Context, id string, limit int) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, sqlAddParticipant, id, limit)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err
		}
		// Nothing counted: the questionnaire is full, or not there.
		var have int
		err = tx.QueryRowContext(ctx, sqlSelectParticipants, id).Scan(&have)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		return cmpErr(err, ErrParticipantLimit)
	})
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrParticipantLimit) {
		return err
	}
	if err != nil {
		return fmt.Errorf("store: add a participant to %s: %w", id, err)
	}
	return nil
}

// Secret implements Store.
func (s *SQLite) Secret(ctx context.Context, name string, size int) ([]byte, error) {
	fresh := make([]byte, size)
	_, _ = rand.Read(fresh) // crypto/rand.Read never fails
	var secret []byte
	err := s.write(ctx, func(tx *sql.Tx) error {
		// The insert first: the transaction takes the write lock at once,
		// and of two processes racing, one secret wins.
		if _, err := tx.ExecContext(ctx, sqlInsertSecret, name, fresh); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, sqlSelectSecret, name).Scan(&secret)
	})
	if err != nil {
		return nil, fmt.Errorf("store: secret %s: %w", name, err)
	}
	return secret, nil
}

// formatOptions is a multi answer's options column: "0,2,3".
func formatOptions(options []int) string {
	b := make([]byte, 0, 2*len(options))
	for i, o := range options {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(o), 10)
	}
	return string(b)
}

// parseOptions reads formatOptions's column back.
func parseOptions(s string) ([]int, error) {
	options := []int{}
	if s == "" {
		return options, nil
	}
	for _, f := range strings.Split(s, ",") {
		o, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("answer options %q: %w", s, err)
		}
		options = append(options, o)
	}
	return options, nil
}

// querier is what scanRows queries: the database or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// scanRows runs query with args and calls scan for each row.
func scanRows(ctx context.Context, q querier, query string, args []any, scan func(*sql.Rows) error) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Apply implements Store.
func (s *SQLite) Apply(ctx context.Context, id string, c Changes) ([]*Answer, error) {
	var replaced []*Answer
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, sqlUpdateState, c.SetCurrent, c.Current, c.Close, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return cmpErr(err, ErrNotFound)
		}
		if c.SetCurrent {
			var closesAt sql.NullInt64
			if !c.ClosesAt.IsZero() {
				closesAt = sql.NullInt64{Int64: c.ClosesAt.UnixMilli(), Valid: true}
			}
			if _, err := tx.ExecContext(ctx, sqlUpdateTimer, closesAt, id, c.Current); err != nil {
				return err
			}
		}
		for _, h := range c.Hide {
			if _, err := tx.ExecContext(ctx, sqlInsertHidden, id, h.Question, h.Key); err != nil {
				return err
			}
		}
		for _, question := range c.Reveal {
			if _, err := tx.ExecContext(ctx, sqlUpdateRevealed, id, question); err != nil {
				return err
			}
		}
		if len(c.Answers) == 0 {
			return nil
		}
		upsert, err := tx.PrepareContext(ctx, sqlUpsertAnswer)
		if err != nil {
			return err
		}
		defer upsert.Close()
		previous, err := tx.PrepareContext(ctx, sqlSelectAnswer)
		if err != nil {
			return err
		}
		defer previous.Close()
		now := time.Now().UnixMilli()
		replaced = make([]*Answer, len(c.Answers))
		for i, a := range c.Answers {
			// The answer this one replaces, read in the transaction that
			// replaces it: the tally takes back what the store had, never
			// what an actor remembers (it keeps the answers of connected
			// participants only).
			if replaced[i], err = readAnswer(ctx, previous, id, a); err != nil {
				return err
			}
			var option sql.NullInt64
			if a.Option != NoOption {
				option = sql.NullInt64{Int64: int64(a.Option), Valid: true}
			}
			var options sql.NullString
			if a.Options != nil {
				options = sql.NullString{String: formatOptions(a.Options), Valid: true}
			}
			if _, err := upsert.ExecContext(ctx, id, a.Question, a.Participant, option, options, a.Value, a.Text, now); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("store: write to %s: %w", id, err)
	}
	return replaced, nil
}

// readAnswer reads the stored answer a would replace, nil for none.
func readAnswer(ctx context.Context, stmt *sql.Stmt, id string, a Answer) (*Answer, error) {
	rows, err := stmt.QueryContext(ctx, id, a.Question, a.Participant)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	old := &Answer{Participant: a.Participant, Question: a.Question}
	if err := scanAnswer(rows, old, nil); err != nil {
		return nil, err
	}
	return old, rows.Close()
}
