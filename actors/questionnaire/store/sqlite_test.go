package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func openTest(t *testing.T, dir string) *SQLite {
	t.Helper()
	s, err := OpenSQLite(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sample(id string) Questionnaire {
	return Questionnaire{
		ID:    id,
		Title: "Lunch",
		Questions: []Question{
			{Text: "Where?", Kind: KindSingle, Options: []string{"canteen", "park", "desk"}},
			{Text: "When?", Kind: KindSingle, Options: []string{"noon", "one"}},
		},
		TokenHash: []byte("0123456789abcdef0123456789abcdef"),
		Created:   time.UnixMilli(1_700_000_000_000),
	}
}

// TestSQLiteRoundTrip writes a questionnaire, answers and state changes,
// and reads each back, through one open store and after a reopen of the
// same directory.
func TestSQLiteRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	q := sample("q1")
	if err := s.Create(ctx, q); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, q); !errors.Is(err, ErrExists) {
		t.Fatalf("second Create of the same id: %v, want ErrExists", err)
	}
	if err := s.Create(ctx, sample("q2")); err != nil {
		t.Fatal(err)
	}
	changes := []Changes{
		{SetCurrent: true, Current: 0, Answers: []Answer{single("ann", 0, 1), single("bob", 0, 2)}},
		{Answers: []Answer{single("ann", 0, 0), single("cat", 0, 0), single("ann", 0, 2)}}, // ann changes her mind twice
		{SetCurrent: true, Current: 1, Answers: []Answer{single("bob", 1, 1)}},
		{Close: true},
	}
	for _, c := range changes {
		if _, err := s.Apply(ctx, "q1", c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Apply(ctx, "q2", Changes{Answers: []Answer{single("zed", 0, 0)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, "nope", Changes{Close: true}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Apply to an unknown id: %v, want ErrNotFound", err)
	}

	wantState := State{Current: 1, Closed: true, Questions: make([]QuestionState, 2)}
	wantAnswers := []Answer{single("ann", 0, 2), single("bob", 0, 2), single("bob", 1, 1), single("cat", 0, 0)}
	check := func(s *SQLite) {
		t.Helper()
		got, err := s.Questionnaire(ctx, "q1")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, q) {
			t.Fatalf("Questionnaire:\n got %+v\nwant %+v", got, q)
		}
		st, err := s.State(ctx, "q1")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(st, wantState) {
			t.Fatalf("State:\n got %+v\nwant %+v", st, wantState)
		}
		checkAnswers(t, s, "q1", wantAnswers)
		fresh, err := s.State(ctx, "q2")
		if err != nil {
			t.Fatal(err)
		}
		if fresh.Current != NoQuestion || fresh.Closed || len(allAnswers(t, s, "q2")) != 1 {
			t.Fatalf("q2's state %+v, want no question shown, open, one answer", fresh)
		}
		for name, err := range map[string]error{
			"Questionnaire": second(s.Questionnaire(ctx, "nope")),
			"State":         second(s.State(ctx, "nope")),
		} {
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("%s of an unknown id: %v, want ErrNotFound", name, err)
			}
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	reopened := openTest(t, dir)
	defer reopened.Close()
	check(reopened)
}

// allAnswers is every answer of questionnaire id, ordered by participant
// and question, as each participant's Answers has them.
func allAnswers(t *testing.T, s *SQLite, id string) []Answer {
	t.Helper()
	var all []Answer
	rows, err := s.db.Query(`SELECT DISTINCT participant FROM answers WHERE questionnaire_id = ? ORDER BY participant`, id)
	if err != nil {
		t.Fatal(err)
	}
	var participants []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		participants = append(participants, p)
	}
	rows.Close()
	for _, p := range participants {
		mine, err := s.Answers(context.Background(), id, p)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, mine...)
	}
	return all
}

// checkAnswers fails t unless id's answers are want.
func checkAnswers(t *testing.T, s *SQLite, id string, want []Answer) {
	t.Helper()
	if got := allAnswers(t, s, id); !reflect.DeepEqual(got, want) {
		t.Fatalf("answers of %s:\n got %+v\nwant %+v", id, got, want)
	}
}

// single is a single question's answer.
func single(participant string, question, option int) Answer {
	return Answer{Participant: participant, Question: question, Option: option}
}

func second[T any](_ T, err error) error { return err }

// TestSQLiteApplyIsAllOrNothing: a batch with a bad answer (an option the
// question does not have) writes nothing, not even its state change.
func TestSQLiteApplyIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir())
	defer s.Close()
	if err := s.Create(ctx, sample("q")); err != nil {
		t.Fatal(err)
	}
	_, err := s.Apply(ctx, "q", Changes{SetCurrent: true, Current: 0, Answers: []Answer{single("ann", 0, 1), single("bob", 0, 9)}})
	if err == nil {
		t.Fatal("an answer with option 9 of 3 was written")
	}
	st, err := s.State(ctx, "q")
	if err != nil {
		t.Fatal(err)
	}
	if st.Current != NoQuestion || len(allAnswers(t, s, "q")) != 0 {
		t.Fatalf("state after a failed Apply: %+v, want nothing written", st)
	}
}

// TestSQLiteOpenErrors: a data directory Lobby cannot use gives an error
// that names the problem, not a panic.
func TestSQLiteOpenErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T) string // returns the data dir
		want  string                    // in the error
	}{
		{
			name:  "empty path",
			setup: func(*testing.T) string { return "" },
			want:  "no data directory",
		},
		{
			name: "a regular file where the directory should be",
			setup: func(t *testing.T) string {
				p := filepath.Join(t.TempDir(), "file")
				writeFile(t, p, "not a directory")
				return p
			},
			want: "create data directory",
		},
		{
			name: "a database file that is not SQLite",
			setup: func(t *testing.T) string {
				dir := t.TempDir()
				writeFile(t, filepath.Join(dir, FileName), strings.Repeat("this is not a database\n", 200))
				return dir
			},
			want: "not a database",
		},
		{
			name: "a database written by a newer Lobby",
			setup: func(t *testing.T) string {
				dir := t.TempDir()
				s := openTest(t, dir)
				if _, err := s.db.Exec(sqlUpdateVersion, len(migrations)+1); err != nil {
					t.Fatal(err)
				}
				s.Close()
				return dir
			},
			want: "newer",
		},
		{
			name: "a data directory another process has open",
			setup: func(t *testing.T) string {
				dir := t.TempDir()
				s := openTest(t, dir)
				t.Cleanup(func() { s.Close() })
				return dir
			},
			want: "in use by another Lobby process",
		},
		{
			name: "a damaged database",
			setup: func(t *testing.T) string {
				dir := t.TempDir()
				s := openTest(t, dir)
				for i := range 50 {
					q := Questionnaire{ID: fmt.Sprintf("q%015d", i), Title: strings.Repeat("t", 200), TokenHash: []byte("h"),
						Questions: []Question{{Text: "?", Options: []string{"a", "b"}}}, Created: time.Now()}
					if err := s.Create(context.Background(), q); err != nil {
						t.Fatal(err)
					}
				}
				s.Close()
				f, err := os.OpenFile(filepath.Join(dir, FileName), os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if _, err := f.WriteAt([]byte(strings.Repeat("garbage!", 512)), 2*4096); err != nil {
					t.Fatal(err)
				}
				return dir
			},
			want: "restore it from a backup",
		},
		{
			name: "a directory the server may not write",
			setup: func(t *testing.T) string {
				if os.Geteuid() == 0 {
					t.Skip("root writes anywhere")
				}
				dir := t.TempDir()
				if err := os.Chmod(dir, 0o500); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
				return dir
			},
			want: FileName,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.setup(t)
			s, err := OpenSQLite(context.Background(), dir)
			if err == nil {
				s.Close()
				t.Fatalf("OpenSQLite(%q) succeeded, want an error saying %q", dir, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "store: ") {
				t.Fatalf("error %q, want one starting store: and saying %q", err, tt.want)
			}
		})
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSQLiteCreatesItsDirectory: a data dir that does not exist yet, nested,
// is created, as `go run ./cmd/lobby` with no flags needs.
func TestSQLiteCreatesItsDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a b", "lobby-data")
	s := openTest(t, dir)
	defer s.Close()
	if _, err := os.Stat(filepath.Join(dir, FileName)); err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := s.db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal mode %q (%v), want wal", mode, err)
	}
}

// TestSQLiteKinds writes a questionnaire of every kind, answers of each,
// a timer, a reveal and hidden entries, and reads them back after a
// reopen.
func TestSQLiteKinds(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	q := Questionnaire{
		ID: "kinds", Title: "Kinds", TokenHash: []byte("h"), Created: time.UnixMilli(1_700_000_000_000),
		Questions: []Question{
			{Text: "One", Kind: KindSingle, Options: []string{"a", "b"}},
			{Text: "Some", Kind: KindMulti, Options: []string{"a", "b", "c"}, MaxChoices: 2},
			{Text: "Rate", Kind: KindScale, Min: 0, Max: 10, Labels: []string{"bad", "good"}},
			{Text: "Rate plain", Kind: KindScale, Min: 1, Max: 5},
			{Text: "Say", Kind: KindText, MaxLength: 80},
		},
	}
	if err := s.Create(ctx, q); err != nil {
		t.Fatal(err)
	}
	closesAt := time.UnixMilli(1_800_000_000_123)
	changes := []Changes{
		{SetCurrent: true, Current: 1, ClosesAt: closesAt, Answers: []Answer{
			{Participant: "ann", Question: 1, Option: NoOption, Options: []int{0, 2}},
			{Participant: "bob", Question: 1, Option: NoOption, Options: []int{1}},
		}},
		{Answers: []Answer{
			{Participant: "ann", Question: 2, Option: NoOption, Value: 0},
			{Participant: "bob", Question: 2, Option: NoOption, Value: 9},
			{Participant: "ann", Question: 4, Option: NoOption, Text: "Hello  World"},
			{Participant: "bob", Question: 1, Option: NoOption, Options: []int{}}, // bob takes his pick back
		}},
		{Reveal: []int{1}, Hide: []Hide{{Question: 4, Key: "spam"}, {Question: 4, Key: "eggs"}, {Question: 4, Key: "spam"}}},
		{SetCurrent: true, Current: 4},
	}
	for _, c := range changes {
		if _, err := s.Apply(ctx, "kinds", c); err != nil {
			t.Fatal(err)
		}
	}
	wantState := State{
		Current: 4,
		Questions: []QuestionState{{}, {ClosesAt: closesAt, Revealed: true}, {}, {},
			{Hidden: []string{"eggs", "spam"}}},
	}
	wantAnswers := []Answer{
		{Participant: "ann", Question: 1, Option: NoOption, Options: []int{0, 2}},
		{Participant: "ann", Question: 2, Option: NoOption, Value: 0},
		{Participant: "ann", Question: 4, Option: NoOption, Text: "Hello  World"},
		{Participant: "bob", Question: 1, Option: NoOption, Options: []int{}},
		{Participant: "bob", Question: 2, Option: NoOption, Value: 9},
	}
	check := func(s *SQLite) {
		t.Helper()
		got, err := s.Questionnaire(ctx, "kinds")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, q) {
			t.Fatalf("Questionnaire:\n got %+v\nwant %+v", got, q)
		}
		st, err := s.State(ctx, "kinds")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(st, wantState) {
			t.Fatalf("State:\n got %+v\nwant %+v", st, wantState)
		}
		checkAnswers(t, s, "kinds", wantAnswers)
	}
	check(s)
	// A show without seconds clears the question's timer.
	if _, err := s.Apply(ctx, "kinds", Changes{SetCurrent: true, Current: 1}); err != nil {
		t.Fatal(err)
	}
	wantState.Current, wantState.Questions[1].ClosesAt = 1, time.Time{}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	reopened := openTest(t, dir)
	defer reopened.Close()
	check(reopened)
}

// TestSQLiteMigratesVersion1: a database written by the first schema
// (before question kinds), with questionnaires, answers, a current
// question and a closed flag, is upgraded in place at open: everything in
// it reads back, its questions as single ones, and it takes the new kinds'
// changes.
func TestSQLiteMigratesVersion1(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// The database as the Lobby before kinds left it: schema version 1,
	// made by its migration, which is never edited.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, FileName)+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		sqlCreateVersionTable,
		`INSERT INTO schema_version (version) VALUES (1)`,
		migrations[0],
		`INSERT INTO questionnaires (id, title, token_hash, current_question, closed, created_at) VALUES
			('old', 'Lunch', x'00ff', 1, 0, 1700000000000), ('done', 'Done', x'01', 0, 1, 1700000000001)`,
		`INSERT INTO questions (questionnaire_id, position, text) VALUES
			('old', 0, 'Where?'), ('old', 1, 'When?'), ('done', 0, 'Ok?')`,
		`INSERT INTO options (questionnaire_id, question, position, text) VALUES
			('old', 0, 0, 'canteen'), ('old', 0, 1, 'park'), ('old', 1, 0, 'noon'), ('old', 1, 1, 'one'),
			('done', 0, 0, 'yes'), ('done', 0, 1, 'no')`,
		`INSERT INTO answers (questionnaire_id, question, participant, option, answered_at) VALUES
			('old', 0, 'ann', 1, 1700000000100), ('old', 1, 'ann', 0, 1700000000200),
			('old', 1, 'bob', 1, 1700000000300), ('done', 0, 'cat', 0, 1700000000400)`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s := openTest(t, dir)
	defer s.Close()
	var version int
	if err := s.db.QueryRow(sqlSelectVersion).Scan(&version); err != nil || version != len(migrations) {
		t.Fatalf("schema version %d (%v) after open, want %d", version, err, len(migrations))
	}
	got, err := s.Questionnaire(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	want := Questionnaire{ID: "old", Title: "Lunch", TokenHash: []byte{0, 0xff}, Created: time.UnixMilli(1_700_000_000_000),
		Questions: []Question{
			{Text: "Where?", Kind: KindSingle, Options: []string{"canteen", "park"}},
			{Text: "When?", Kind: KindSingle, Options: []string{"noon", "one"}},
		}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("migrated questionnaire:\n got %+v\nwant %+v", got, want)
	}
	st, err := s.State(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	wantState := State{Current: 1, Questions: make([]QuestionState, 2)}
	if !reflect.DeepEqual(st, wantState) {
		t.Fatalf("migrated state:\n got %+v\nwant %+v", st, wantState)
	}
	checkAnswers(t, s, "old", []Answer{single("ann", 0, 1), single("ann", 1, 0), single("bob", 1, 1)})
	if done, err := s.State(ctx, "done"); err != nil || !done.Closed || len(allAnswers(t, s, "done")) != 1 {
		t.Fatalf("migrated closed questionnaire: %+v, %v", done, err)
	}
	// The migrated database still checks single answers' options, and
	// takes the new changes.
	if _, err := s.Apply(ctx, "old", Changes{Answers: []Answer{single("cat", 0, 5)}}); err == nil {
		t.Fatal("an answer with option 5 of 2 was written to the migrated database")
	}
	closesAt := time.UnixMilli(1_800_000_000_000)
	if _, err := s.Apply(ctx, "old", Changes{SetCurrent: true, Current: 0, ClosesAt: closesAt, Reveal: []int{0},
		Answers: []Answer{single("cat", 0, 0)}}); err != nil {
		t.Fatal(err)
	}
	st, err = s.State(ctx, "old")
	if err != nil || st.Questions[0].ClosesAt != closesAt || !st.Questions[0].Revealed || len(allAnswers(t, s, "old")) != 4 {
		t.Fatalf("state after a change to the migrated database: %+v, %v", st, err)
	}
}

// TestSQLiteSizeLimit: past its limit the store refuses writes with
// ErrFull, keeps what it has, and still reads (issue 21, finding 6: one
// address grew the database by 250 MB a minute).
func TestSQLiteSizeLimit(t *testing.T) {
	ctx := context.Background()
	s, err := OpenSQLiteLimit(ctx, t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	big := sample("")
	big.Title = strings.Repeat("t", 60<<10)
	var stored []string
	for i := range 100 { // 6 MB, past the MiB
		big.ID = fmt.Sprintf("q%d", i)
		err = s.Create(ctx, big)
		if err != nil {
			break
		}
		stored = append(stored, big.ID)
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("create past the limit: %v, want ErrFull", err)
	}
	if len(stored) == 0 || len(stored) > 17 {
		t.Fatalf("%d questionnaires of 60 KiB stored under a 1 MiB limit", len(stored))
	}
	for _, id := range stored {
		if _, err := s.Questionnaire(ctx, id); err != nil {
			t.Fatalf("read %s once full: %v", id, err)
		}
	}
	if err := s.Create(ctx, sample("small")); !errors.Is(err, ErrFull) {
		t.Fatalf("a small create once full: %v, want ErrFull", err)
	}
	// What creates may not take is kept for the answers of those made
	// (each answer is in the table and in answers_by_value).
	var answers []Answer
	for i := range 1000 {
		answers = append(answers, single(fmt.Sprintf("participant-%d", i), 0, i%3))
	}
	if _, err := s.Apply(ctx, stored[0], Changes{SetCurrent: true, Current: 0, Answers: answers}); err != nil {
		t.Fatalf("1 000 answers once creates are refused: %v", err)
	}
}

// TestSQLiteWALIsCutBack: a reader that holds a snapshot keeps every
// checkpoint from reaching the end of the log, which then grows with the
// writes; once the reader is done, the next checkpoint cuts the file back
// rather than leave it at its largest for good.
func TestSQLiteWALIsCutBack(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	defer s.Close()
	if err := s.Create(ctx, sample("seed")); err != nil {
		t.Fatal(err)
	}
	reader, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := reader.QueryRowContext(ctx, "SELECT count(*) FROM questionnaires").Scan(&n); err != nil {
		t.Fatal(err)
	}
	big := sample("")
	big.Title = strings.Repeat("t", 60<<10)
	for i := range 800 { // 48 MB of log behind the reader
		big.ID = fmt.Sprintf("q%d", i)
		if err := s.Create(ctx, big); err != nil {
			t.Fatal(err)
		}
	}
	wal := filepath.Join(dir, FileName+"-wal")
	if fi, err := os.Stat(wal); err != nil || fi.Size() < maxWALBytes {
		t.Fatalf("log of %v (%v) behind a reader: the test does not grow it", fi.Size(), err)
	}
	if err := reader.Rollback(); err != nil {
		t.Fatal(err)
	}
	// Two writes: the first checkpoint copies the log back, the second
	// starts the log over and cuts it.
	for _, id := range []string{"after1", "after2"} {
		if err := s.Create(ctx, sample(id)); err != nil {
			t.Fatal(err)
		}
	}
	if fi, err := os.Stat(wal); err != nil || fi.Size() > maxWALBytes {
		t.Fatalf("log of %v bytes (%v) once the reader is done, want at most %d", fi.Size(), err, maxWALBytes)
	}
}
