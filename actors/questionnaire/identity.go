package questionnaire

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lobby/lobby/actors/questionnaire/store"
)

// Participant identities (issue 21, finding 7). A participant's id used to
// be the client's own, so one script connected 5 000 fake participants in
// 15 s, each one vote. Now the server issues them: NewParticipant makes a
// random id and a token, the HMAC of the questionnaire's and the
// participant's ids under a secret kept in the store (so that a restart
// keeps every identity valid), and the participant socket needs both.
// The page keeps them, so a reload or a reconnect is the same participant
// with the same answers; the transport bounds how fast one address gets
// new ones, and the store how many one questionnaire hands out
// (Config.MaxParticipants).

// DefaultMaxParticipants is how many participant identities one
// questionnaire issues when Config.MaxParticipants is zero.
const DefaultMaxParticipants = 10_000

// Errors of NewParticipant and AuthorizeParticipant.
var (
	// ErrParticipantLimit is returned by NewParticipant for a
	// questionnaire that has issued every identity it may.
	ErrParticipantLimit = errors.New("questionnaire: the questionnaire has all the participants it may have")
	// ErrWrongParticipantToken is returned by AuthorizeParticipant for a
	// token this server did not issue to that participant of that
	// questionnaire.
	ErrWrongParticipantToken = errors.New("questionnaire: wrong participant token")
)

// ParticipantIdentity is an identity NewParticipant issued.
type ParticipantIdentity struct {
	// ID is the participant's id, for ?participant=.
	ID string
	// Token proves that the server issued ID for the questionnaire, for
	// ?token=.
	Token string
}

// secretName is the store's name of the secret participant tokens are
// signed with; secretSize is its length in bytes.
const (
	secretName = "participant-token"
	secretSize = 32
)

// NewParticipant issues a new participant identity for questionnaire id:
// ErrUnknownQuestionnaire for none, ErrParticipantLimit when it has
// issued its Config.MaxParticipants.
func (s *Service) NewParticipant(ctx context.Context, id string) (ParticipantIdentity, error) {
	if !validQuestionnaireID(id) {
		return ParticipantIdentity{}, ErrUnknownQuestionnaire
	}
	switch err := s.store.AddParticipant(ctx, id, s.maxParticipants); {
	case errors.Is(err, store.ErrNotFound):
		return ParticipantIdentity{}, ErrUnknownQuestionnaire
	case errors.Is(err, store.ErrParticipantLimit):
		return ParticipantIdentity{}, ErrParticipantLimit
	case err != nil:
		return ParticipantIdentity{}, fmt.Errorf("new participant: %w", err)
	}
	participant := newParticipantID()
	return ParticipantIdentity{ID: participant, Token: participantToken(s.secret, id, participant)}, nil
}

// AuthorizeParticipant returns nil when token is the one NewParticipant
// issued with participant for questionnaire id, else
// ErrWrongParticipantToken. It does not look the questionnaire up, nor
// call the store.
func (s *Service) AuthorizeParticipant(id, participant, token string) error {
	want := participantToken(s.secret, id, participant)
	if !hmac.Equal([]byte(token), []byte(want)) {
		return ErrWrongParticipantToken
	}
	return nil
}

// secretTimeout bounds the store's answer for the participant token
// secret at Start.
const secretTimeout = 10 * time.Second

// participantSecret reads the secret participant tokens are signed with
// from the store (which makes it the first time). Start calls it once,
// before anything else: a store that cannot give it fails the start, not
// the first participant's request.
func participantSecret(ctx context.Context, st store.Store) ([]byte, error) {
	secret, err := st.Secret(ctx, secretName, secretSize)
	if err != nil {
		return nil, fmt.Errorf("participant token secret: %w", err)
	}
	if len(secret) < 16 {
		return nil, fmt.Errorf("participant token secret: %d bytes in the store, too short (want %d)", len(secret), secretSize)
	}
	return secret, nil
}

// participantToken is the token of participant in questionnaire id: an
// HMAC-SHA256 that names both, so that a token is good for one
// participant of one questionnaire.
func participantToken(secret []byte, id, participant string) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("lobby participant v1\x00" + id + "\x00" + participant))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// newParticipantID makes a participant id: "p" and 26 characters of
// a-z 2-7, 128 random bits.
func newParticipantID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return "p" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}
