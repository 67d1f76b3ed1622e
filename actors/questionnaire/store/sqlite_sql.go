package store

// Every SQL statement of the SQLite store is in this file.
//
// Transactions are SQLite's default (deferred) ones, and every write
// transaction starts with a write: it then takes the write lock at once,
// waiting up to the busy timeout for another writer, instead of starting
// as a reader and failing to upgrade (SQLITE_BUSY) under contention.

// migrations are the schema's versions, applied in order at open: the
// database's schema_version says how many have been applied. A released
// migration is never edited; a change is a new one appended.
var migrations = []string{
	// 1: questionnaires, their questions and options, answers.
	`
CREATE TABLE questionnaires (
	id               TEXT PRIMARY KEY,
	title            TEXT NOT NULL,
	token_hash       BLOB NOT NULL,
	current_question INTEGER,          -- NULL before the first show
	closed           INTEGER NOT NULL DEFAULT 0,
	created_at       INTEGER NOT NULL  -- Unix milliseconds
) STRICT;

CREATE TABLE questions (
	questionnaire_id TEXT NOT NULL REFERENCES questionnaires (id),
	position         INTEGER NOT NULL,
	text             TEXT NOT NULL,
	PRIMARY KEY (questionnaire_id, position)
) STRICT, WITHOUT ROWID;

CREATE TABLE options (
	questionnaire_id TEXT NOT NULL,
	question         INTEGER NOT NULL,
	position         INTEGER NOT NULL,
	text             TEXT NOT NULL,
	PRIMARY KEY (questionnaire_id, question, position),
	FOREIGN KEY (questionnaire_id, question) REFERENCES questions (questionnaire_id, position)
) STRICT, WITHOUT ROWID;

-- One answer per participant per question: a later one replaces it.
CREATE TABLE answers (
	questionnaire_id TEXT NOT NULL,
	question         INTEGER NOT NULL,
	participant      TEXT NOT NULL,
	option           INTEGER NOT NULL,
	answered_at      INTEGER NOT NULL, -- Unix milliseconds
	PRIMARY KEY (questionnaire_id, question, participant),
	FOREIGN KEY (questionnaire_id, question, option) REFERENCES options (questionnaire_id, question, position)
) STRICT, WITHOUT ROWID;
`,
	// 2: question kinds (multi, scale, text) and their settings, each
	// question's timer and reveal, hidden text entries; answers that are
	// an option, several, a value or a text. answers is rebuilt because
	// its option column was NOT NULL; its rows are kept, as single
	// answers.
	`
ALTER TABLE questions ADD COLUMN kind TEXT NOT NULL DEFAULT 'single';
ALTER TABLE questions ADD COLUMN max_choices INTEGER;        -- multi
ALTER TABLE questions ADD COLUMN scale_min INTEGER;          -- scale
ALTER TABLE questions ADD COLUMN scale_max INTEGER;          -- scale
ALTER TABLE questions ADD COLUMN label_low TEXT;             -- scale, NULL for none
ALTER TABLE questions ADD COLUMN label_high TEXT;            -- scale
ALTER TABLE questions ADD COLUMN max_length INTEGER;         -- text
ALTER TABLE questions ADD COLUMN closes_at INTEGER;          -- Unix milliseconds, NULL for no timer
ALTER TABLE questions ADD COLUMN revealed INTEGER NOT NULL DEFAULT 0;

CREATE TABLE hidden_entries (
	questionnaire_id TEXT NOT NULL,
	question         INTEGER NOT NULL,
	entry            TEXT NOT NULL,    -- the entry's grouping key
	PRIMARY KEY (questionnaire_id, question, entry),
	FOREIGN KEY (questionnaire_id, question) REFERENCES questions (questionnaire_id, position)
) STRICT, WITHOUT ROWID;

-- A composite foreign key with a NULL column is not checked: option is
-- checked against options for single answers, and NULL for the others.
CREATE TABLE answers_v2 (
	questionnaire_id TEXT NOT NULL,
	question         INTEGER NOT NULL,
	participant      TEXT NOT NULL,
	option           INTEGER,          -- single
	options          TEXT,             -- multi: option indexes, increasing, comma-separated
	value            INTEGER,          -- scale
	text             TEXT,             -- text
	answered_at      INTEGER NOT NULL, -- Unix milliseconds
	PRIMARY KEY (questionnaire_id, question, participant),
	FOREIGN KEY (questionnaire_id, question) REFERENCES questions (questionnaire_id, position),
	FOREIGN KEY (questionnaire_id, question, option) REFERENCES options (questionnaire_id, question, position)
) STRICT, WITHOUT ROWID;
INSERT INTO answers_v2 (questionnaire_id, question, participant, option, answered_at)
	SELECT questionnaire_id, question, participant, option, answered_at FROM answers;
DROP TABLE answers;
ALTER TABLE answers_v2 RENAME TO answers;
`,
	// 3: tallies counted by the database, not from every answer loaded
	// (issue 21, finding 7): an index that GROUP BY reads in order, the
	// count of participant identities issued, and the secret they are
	// signed with, so that a restart keeps every participant's identity.
	`
CREATE INDEX answers_by_value ON answers (questionnaire_id, question, option, options, value, text);
ALTER TABLE questionnaires ADD COLUMN participants INTEGER NOT NULL DEFAULT 0;
CREATE TABLE secrets (
	name  TEXT PRIMARY KEY,
	value BLOB NOT NULL
) STRICT;
`,
}

const (
	// sqlCreateVersionTable starts the migration transaction with a write.
	sqlCreateVersionTable = `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL) STRICT`
	sqlSelectVersion      = `SELECT version FROM schema_version`
	sqlInsertVersion      = `INSERT INTO schema_version (version) VALUES (0)`
	sqlUpdateVersion      = `UPDATE schema_version SET version = ?`

	sqlInsertQuestionnaire = `
INSERT INTO questionnaires (id, title, token_hash, created_at) VALUES (?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING`
	sqlInsertQuestion = `
INSERT INTO questions (questionnaire_id, position, text, kind, max_choices, scale_min, scale_max, label_low, label_high, max_length)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlInsertOption = `INSERT INTO options (questionnaire_id, question, position, text) VALUES (?, ?, ?, ?)`

	sqlSelectQuestionnaire = `SELECT title, token_hash, created_at FROM questionnaires WHERE id = ?`
	sqlSelectQuestions     = `
SELECT text, kind, max_choices, scale_min, scale_max, label_low, label_high, max_length
FROM questions WHERE questionnaire_id = ? ORDER BY position`
	sqlSelectOptions = `SELECT question, text FROM options WHERE questionnaire_id = ? ORDER BY question, position`

	sqlSelectState          = `SELECT current_question, closed FROM questionnaires WHERE id = ?`
	sqlSelectQuestionStates = `SELECT closes_at, revealed FROM questions WHERE questionnaire_id = ? ORDER BY position`
	sqlSelectHidden         = `SELECT question, entry FROM hidden_entries WHERE questionnaire_id = ? ORDER BY question, entry`
	// sqlSelectTally counts answers alike: for a single, multi or scale
	// question only one column varies, so the groups are its options,
	// option sets or values; for a text question, its distinct texts.
	// answers_by_value holds the rows in this order: no sort, no temporary
	// table, whatever the number of answers.
	sqlSelectTally = `
SELECT question, option, options, value, text, COUNT(*) FROM answers
WHERE questionnaire_id = ?
GROUP BY question, option, options, value, text`
	// sqlSelectParticipantAnswers seeks the primary key once per question
	// (the IN list), rather than scan every answer for one participant's
	// or keep an index of its own.
	sqlSelectParticipantAnswers = `
SELECT question, option, options, value, text FROM answers
WHERE questionnaire_id = ?1 AND participant = ?2
	AND question IN (SELECT position FROM questions WHERE questionnaire_id = ?1)
ORDER BY question`
	// sqlSelectAnswer is the answer an upsert replaces.
	sqlSelectAnswer = `
SELECT option, options, value, text FROM answers
WHERE questionnaire_id = ? AND question = ? AND participant = ?`
	// sqlAddParticipant counts one more participant identity, unless
	// the questionnaire has ?2 already. Parameters: id, limit.
	sqlAddParticipant = `
UPDATE questionnaires SET participants = participants + 1
WHERE id = ?1 AND participants < ?2`
	sqlSelectParticipants = `SELECT participants FROM questionnaires WHERE id = ?`
	sqlSelectSecret       = `SELECT value FROM secrets WHERE name = ?`
	sqlInsertSecret       = `INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`

	// sqlUpdateState starts Apply's transaction with a write, and finds
	// out whether the questionnaire exists. Parameters: set current (0 or
	// 1), current, close (0 or 1), id.
	sqlUpdateState = `
UPDATE questionnaires
SET current_question = CASE WHEN ?1 THEN ?2 ELSE current_question END,
    closed = closed OR ?3
WHERE id = ?4`
	sqlUpsertAnswer = `
INSERT INTO answers (questionnaire_id, question, participant, option, options, value, text, answered_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (questionnaire_id, question, participant)
DO UPDATE SET option = excluded.option, options = excluded.options, value = excluded.value,
	text = excluded.text, answered_at = excluded.answered_at`
	sqlInsertHidden = `
INSERT INTO hidden_entries (questionnaire_id, question, entry) VALUES (?, ?, ?)
ON CONFLICT DO NOTHING`
	sqlUpdateRevealed = `UPDATE questions SET revealed = 1 WHERE questionnaire_id = ? AND position = ?`
	sqlUpdateTimer    = `UPDATE questions SET closes_at = ? WHERE questionnaire_id = ? AND position = ?`
)
