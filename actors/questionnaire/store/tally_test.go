package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
)

// TestSQLiteTallyAndReplaced: Tally counts alike answers in groups, of
// every kind, with the last answer of each participant only; Apply says
// which answer each one replaced, also within one batch.
func TestSQLiteTallyAndReplaced(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir())
	defer s.Close()
	q := Questionnaire{ID: "k", Title: "Kinds", TokenHash: []byte{1}, Questions: []Question{
		{Text: "One", Kind: KindSingle, Options: []string{"a", "b"}},
		{Text: "Many", Kind: KindMulti, Options: []string{"a", "b", "c"}, MaxChoices: 3},
		{Text: "Rate", Kind: KindScale, Min: 1, Max: 5},
		{Text: "Say", Kind: KindText, MaxLength: 80},
	}}
	if err := s.Create(ctx, q); err != nil {
		t.Fatal(err)
	}
	first := Answer{Participant: "ann", Question: 0, Option: 0}
	replaced, err := s.Apply(ctx, "k", Changes{Answers: []Answer{
		first,
		{Participant: "bob", Question: 0, Option: 1},
		{Participant: "ann", Question: 0, Option: 1}, // replaces the first, in the same batch
		{Participant: "ann", Question: 1, Option: NoOption, Options: []int{0, 2}},
		{Participant: "bob", Question: 1, Option: NoOption, Options: []int{0, 2}},
		{Participant: "ann", Question: 2, Option: NoOption, Value: 4},
		{Participant: "ann", Question: 3, Option: NoOption, Text: "hi"},
		{Participant: "bob", Question: 3, Option: NoOption, Text: "hi"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := []*Answer{nil, nil, &first, nil, nil, nil, nil, nil}
	if !reflect.DeepEqual(replaced, want) {
		t.Fatalf("replaced %v, want the first answer third only", replaced)
	}
	replaced, err = s.Apply(ctx, "k", Changes{Answers: []Answer{{Participant: "ann", Question: 2, Option: NoOption, Value: 1}}})
	if err != nil || len(replaced) != 1 || replaced[0] == nil || replaced[0].Value != 4 {
		t.Fatalf("replaced %v (%v), want ann's 4", replaced, err)
	}

	counts, err := s.Tally(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(counts))
	for i, c := range counts {
		got[i] = fmt.Sprintf("q%d option=%d options=%v value=%d text=%q: %d", c.Question, c.Option, c.Options, c.Value, c.Text, c.Count)
	}
	slices.Sort(got)
	wantCounts := []string{
		`q0 option=1 options=[] value=0 text="": 2`,
		`q1 option=-1 options=[0 2] value=0 text="": 2`,
		`q2 option=-1 options=[] value=1 text="": 1`,
		`q3 option=-1 options=[] value=0 text="hi": 2`,
	}
	if !slices.Equal(got, wantCounts) {
		t.Fatalf("Tally:\n got %q\nwant %q", got, wantCounts)
	}
	if counts, err := s.Tally(ctx, "nope"); err != nil || len(counts) != 0 {
		t.Fatalf("Tally of an unknown questionnaire: %v, %v", counts, err)
	}
}

// TestSQLiteParticipantsAndSecret: AddParticipant counts up to its limit;
// Secret makes a secret once and gives the same one after a reopen.
func TestSQLiteParticipantsAndSecret(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	if err := s.Create(ctx, sample("q")); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := s.AddParticipant(ctx, "q", 3); err != nil {
			t.Fatalf("participant %d of 3: %v", i+1, err)
		}
	}
	if err := s.AddParticipant(ctx, "q", 3); !errors.Is(err, ErrParticipantLimit) {
		t.Fatalf("a fourth of 3: %v, want ErrParticipantLimit", err)
	}
	if err := s.AddParticipant(ctx, "nope", 3); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown questionnaire: %v, want ErrNotFound", err)
	}
	secret, err := s.Secret(ctx, "x", 32)
	if err != nil || len(secret) != 32 {
		t.Fatalf("Secret: %x, %v", secret, err)
	}
	if again, err := s.Secret(ctx, "x", 32); err != nil || !bytes.Equal(again, secret) {
		t.Fatalf("Secret again: %x, %v, want %x", again, err, secret)
	}
	if other, err := s.Secret(ctx, "y", 32); err != nil || bytes.Equal(other, secret) {
		t.Fatalf("another Secret: %x, %v", other, err)
	}
	s.Close()
	s = openTest(t, dir)
	defer s.Close()
	if again, err := s.Secret(ctx, "x", 32); err != nil || !bytes.Equal(again, secret) {
		t.Fatalf("Secret after a reopen: %x, %v, want %x", again, err, secret)
	}
	if err := s.AddParticipant(ctx, "q", 3); !errors.Is(err, ErrParticipantLimit) {
		t.Fatalf("after a reopen: %v, want ErrParticipantLimit", err)
	}
}

// BenchmarkTallyMillion counts 1 000 000 answers to one single question
// (4 options) and 1 000 texts of 100 answers each: what a questionnaire
// actor and GET /results read. The rows are written with SQL, as fast as
// SQLite takes them.
//
//	go test ./actors/questionnaire/store -run '^$' -bench TallyMillion -benchtime 5x
func BenchmarkTallyMillion(b *testing.B) {
	ctx := context.Background()
	s, err := OpenSQLite(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	q := Questionnaire{ID: "big", Title: "Big", TokenHash: []byte{1}, Questions: []Question{
		{Text: "Pick", Kind: KindSingle, Options: []string{"a", "b", "c", "d"}},
		{Text: "Say", Kind: KindText, MaxLength: 80},
	}}
	if err := s.Create(ctx, q); err != nil {
		b.Fatal(err)
	}
	for _, stmt := range []string{
		`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999999)
		 INSERT INTO answers (questionnaire_id, question, participant, option, value, text, answered_at)
		 SELECT 'big', 0, 'p' || i, i % 4, 0, '', 0 FROM n`,
		`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99999)
		 INSERT INTO answers (questionnaire_id, question, participant, value, text, answered_at)
		 SELECT 'big', 1, 'p' || i, 0, 'word ' || (i % 1000), 0 FROM n`,
	} {
		if _, err := s.db.Exec(stmt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		counts, err := s.Tally(ctx, "big")
		if err != nil || len(counts) != 1004 {
			b.Fatalf("%d counts, %v", len(counts), err)
		}
	}
}
