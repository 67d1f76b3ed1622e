package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/messages"
)

// DashboardRoom is the room POST /dailyDashBoard publishes to.
const DashboardRoom = "dailyNews"

// publishBody is a publish route's answer.
type publishBody struct {
	Room      string `json:"room"`
	ID        string `json:"id"`
	Delivered int    `json:"delivered"`
	Seq       uint64 `json:"seq"`
	// Duplicate is true when the room had a publish with the request's
	// Idempotency-Key within the window: Seq is that one's, and nothing
	// was stored or delivered (Delivered is 0).
	Duplicate bool `json:"duplicate,omitempty"`
}

// publishRoom is POST /rooms/{room}/broadcast: any JSON body, to every
// member of the room.
func (s *Server) publishRoom(w http.ResponseWriter, r *http.Request) {
	room, ok := roomFromPath(w, r)
	if !ok {
		return
	}
	key, ok := idempotencyKey(w, r)
	if !ok {
		return
	}
	body, ok := s.readJSONBody(w, r)
	if !ok {
		return
	}
	s.publish(w, r, room, key, body)
}

// idempotencyKey is the request's Idempotency-Key header, "" for none
// (messages.ValidIdempotencyKey says what a key is). On a bad key, or
// two, it has answered 400.
func idempotencyKey(w http.ResponseWriter, r *http.Request) (string, bool) {
	values := r.Header.Values("Idempotency-Key")
	if len(values) == 0 {
		return "", true
	}
	if len(values) > 1 || !messages.ValidIdempotencyKey(values[0]) {
		writeError(w, http.StatusBadRequest, codeInvalidIdempotencyKey,
			"a publish takes one Idempotency-Key header: "+messages.InvalidIdempotencyKeyText)
		return "", false
	}
	return values[0], true
}

// statisticRecord is one row of the seed's daily dashboard.
type statisticRecord struct {
	ProductLine   string  `json:"product_line"`
	ProductLineID int64   `json:"product_line_id"`
	TotalTrx      int64   `json:"total_trx"`
	TotalAmount   float64 `json:"total_amount"`
	Currency      string  `json:"currency"`
	GroupStatus   string  `json:"group_status"`
}

// publishDashboard is POST /dailyDashBoard: a JSON array of statistic
// records, published to room dailyNews as posted.
func (s *Server) publishDashboard(w http.ResponseWriter, r *http.Request) {
	key, ok := idempotencyKey(w, r)
	if !ok {
		return
	}
	body, ok := s.readJSONBody(w, r)
	if !ok {
		return
	}
	if err := checkStatistics(body); err != nil {
		writeError(w, http.StatusBadRequest, codeInvalidBody, "the body must be a JSON array of statistic records: "+err.Error())
		return
	}
	s.publish(w, r, DashboardRoom, key, body)
}

// maxStatisticRecords bounds the records of one dashboard publish: a day's
// figures per product line are a few dozen, and a megabyte of [{},{},...]
// is 350 000 records to check.
const maxStatisticRecords = 10_000

// checkStatistics checks that body, valid JSON, is an array of statistic
// records, decoding one record at a time into the same value: decoding the
// whole array at once costs ~160 bytes a record, 57 MB for a 1 MiB body of
// empty objects.
func checkStatistics(body []byte) error {
	if body[0] != '[' {
		return errors.New("not an array")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil {
		return err
	}
	var rec statisticRecord
	for n := 0; dec.More(); n++ {
		if n == maxStatisticRecords {
			return fmt.Errorf("more than %d records", maxStatisticRecords)
		}
		rec = statisticRecord{}
		if err := dec.Decode(&rec); err != nil {
			return fmt.Errorf("record %d: %w", n, err)
		}
		if err := rec.check(); err != nil {
			return fmt.Errorf("record %d: %w", n, err)
		}
	}
	return nil
}

// Bounds of a statistic record's fields: figures no day of business
// reaches, past which a record is a mistake or an attack (one
// total_amount of 1.7e308 flattens every other line of the chart to 0).
const (
	maxStatisticFigure = 1e15
	maxProductLine     = 100 // characters
)

// check refuses a record whose figures are out of bounds.
func (rec *statisticRecord) check() error {
	switch {
	case math.IsNaN(rec.TotalAmount) || math.Abs(rec.TotalAmount) > maxStatisticFigure:
		return fmt.Errorf("total_amount %g is out of bounds (at most %g either way)", rec.TotalAmount, maxStatisticFigure)
	case rec.TotalTrx < 0 || float64(rec.TotalTrx) > maxStatisticFigure:
		return fmt.Errorf("total_trx %d is out of bounds (0 to %g)", rec.TotalTrx, maxStatisticFigure)
	case utf8.RuneCountInString(rec.ProductLine) > maxProductLine:
		return fmt.Errorf("product_line is longer than %d characters", maxProductLine)
	}
	return nil
}

// publish publishes body to room, with the publisher's idempotency key
// ("" for none), and answers the request.
func (s *Server) publish(w http.ResponseWriter, r *http.Request, room, key string, body []byte) {
	start := time.Now()
	res, err := s.node.Publish(r.Context(), room, s.cfg.PublisherID, key, body)
	if errors.Is(err, actors.ErrNoAnswer) || err == nil && res.OutcomeUnknown {
		// The room, or the stream, has the message and did not say in
		// time what became of it: it may be stored and delivered.
		s.metrics.outcomeUnknown.Inc()
		writeOutcomeUnknown(w, key != "")
		return
	}
	if err == nil && res.FollowRefused {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, codeUnavailable,
			"this node can follow no room now (the cluster refuses it a consumer: NATS's limit of consumers is reached): the message was not sent; publish through another node, or retry later")
		return
	}
	if writeNotSent(w, err, func() (bool, bool, bool) { return res.TooBig, res.Unavailable, res.StoreFull }) {
		return
	}
	if res.Duplicate {
		s.metrics.duplicates.Inc()
		writeJSON(w, http.StatusOK, publishBody{Room: room, ID: s.cfg.PublisherID.String(), Seq: res.Seq, Duplicate: true})
		return
	}
	if res.Refused != nil {
		// The room's policy (actors.Config.Policy) refused it: its code is
		// the error, as a lobby.v1 member's error frame would say.
		writeError(w, http.StatusForbidden, res.Refused.Code, res.Refused.Message)
		return
	}
	if res.RoomLimit {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, codeTooManyRooms, "the server has as many rooms as it may keep; retry later or publish to an existing room")
		return
	}
	// The room answers once it has handed the message to every member.
	s.metrics.fanout.Observe(time.Since(start).Seconds())
	s.metrics.received.Inc()
	writeJSON(w, http.StatusOK, publishBody{Room: room, ID: s.cfg.PublisherID.String(), Delivered: res.Delivered, Seq: res.Seq})
}

// readJSONBody reads a publish body of at most MaxPublishBytes that is one
// valid JSON value, trimmed of surrounding white space. On failure it has
// answered the request.
func (s *Server) readJSONBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	raw, ok := readLimited(w, r, s.cfg.MaxPublishBytes, fmt.Sprintf("the body is larger than %d bytes", s.cfg.MaxPublishBytes))
	if !ok {
		return nil, false
	}
	body := bytes.TrimSpace(raw)
	if len(body) == 0 {
		writeError(w, http.StatusBadRequest, codeInvalidBody, "the body is empty; send JSON")
		return nil, false
	}
	// messages.CheckJSON refuses invalid UTF-8 too, which json.Valid
	// accepts inside strings and every member's text frame would carry.
	if err := messages.CheckJSON(body); err != nil {
		writeError(w, http.StatusBadRequest, codeInvalidJSON, "the body is "+err.Error())
		return nil, false
	}
	return body, true
}

// readLimited reads a request's body whole, at most limit bytes. On
// failure it has answered the request: 413 with tooBig past the limit, 503
// when the body budget is spent (chargedBody), 400 when the body could not
// be read.
func readLimited(w http.ResponseWriter, r *http.Request, limit int64, tooBig string) ([]byte, bool) {
	// MaxBytesReader marks the connection to be closed after an oversized
	// body only when it is given net/http's own writer.
	limitWriter := w
	if sw, ok := w.(*statusWriter); ok {
		limitWriter = sw.ResponseWriter
	}
	raw, err := io.ReadAll(http.MaxBytesReader(limitWriter, r.Body, limit))
	var over *http.MaxBytesError
	switch {
	case errors.As(err, &over):
		writeError(w, http.StatusRequestEntityTooLarge, codeBodyTooLarge, tooBig)
		return nil, false
	case errors.Is(err, errBodyBudget):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, codeOverCapacity, "the server is reading as many request bodies as it takes; retry later")
		return nil, false
	case err != nil:
		writeError(w, http.StatusBadRequest, codeInvalidBody, "could not read the body: "+err.Error())
		return nil, false
	}
	return raw, true
}

// sendDirect is POST /sessions/{id}/send: any JSON body, to one session.
func (s *Server) sendDirect(w http.ResponseWriter, r *http.Request) {
	to, err := uuid.Parse(r.PathValue("id"))
	if err != nil || len(r.PathValue("id")) != 36 {
		writeError(w, http.StatusBadRequest, codeInvalidID, "a session id is a UUID such as 6f0c2a43-52a4-4f3e-9b8e-2b1a5a2d7c10")
		return
	}
	body, ok := s.readJSONBody(w, r)
	if !ok {
		return
	}
	res, err := s.node.Direct(r.Context(), to, s.cfg.PublisherID, body)
	if writeNotSent(w, err, func() (bool, bool, bool) { return res.TooBig, res.Unavailable, false }) {
		return
	}
	if !res.Delivered {
		writeError(w, http.StatusNotFound, codeUnknownSession, "no session "+to.String())
		return
	}
	s.metrics.received.Inc()
	writeJSON(w, http.StatusOK, map[string]any{"to": to.String(), "id": s.cfg.PublisherID.String(), "delivered": true})
}
