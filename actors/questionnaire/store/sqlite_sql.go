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
	sqlInsertQuestion = `INSERT INTO questions (questionnaire_id, position, text) VALUES (?, ?, ?)`
	sqlInsertOption   = `INSERT INTO options (questionnaire_id, question, position, text) VALUES (?, ?, ?, ?)`

	sqlSelectQuestionnaire = `SELECT title, token_hash, created_at FROM questionnaires WHERE id = ?`
	sqlSelectOptions       = `
SELECT q.position, q.text, o.text
FROM questions q JOIN options o ON o.questionnaire_id = q.questionnaire_id AND o.question = q.position
WHERE q.questionnaire_id = ?
ORDER BY q.position, o.position`

	sqlSelectState   = `SELECT current_question, closed FROM questionnaires WHERE id = ?`
	sqlSelectAnswers = `
SELECT participant, question, option FROM answers
WHERE questionnaire_id = ?
ORDER BY participant, question`
	sqlSelectOptionCounts = `
SELECT question, COUNT(*) FROM options WHERE questionnaire_id = ?
GROUP BY question ORDER BY question`
	sqlSelectAnswerCounts = `
SELECT question, option, COUNT(*) FROM answers WHERE questionnaire_id = ?
GROUP BY question, option`

	// sqlUpdateState starts Apply's transaction with a write, and finds
	// out whether the questionnaire exists. Parameters: set current (0 or
	// 1), current, close (0 or 1), id.
	sqlUpdateState = `
UPDATE questionnaires
SET current_question = CASE WHEN ?1 THEN ?2 ELSE current_question END,
    closed = closed OR ?3
WHERE id = ?4`
	sqlUpsertAnswer = `
INSERT INTO answers (questionnaire_id, question, participant, option, answered_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (questionnaire_id, question, participant)
DO UPDATE SET option = excluded.option, answered_at = excluded.answered_at`
)
