package cluster

import (
	"encoding/binary"
	"encoding/json"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/lobby/lobby/actors/broker"
)

// A record is one message of the stream. It holds one room message, or,
// when a room's appends queued while one was being stored, several of
// them in a row (header Lobby-Count), stored with one acknowledgement:
// a room appends one record at a time, since each one's condition is
// the room's last stream sequence, which only the last one's ack says;
// putting what queued meanwhile into the next record is what lets a
// room take more than one message per round trip to the stream.
//
// A record of one message is the message itself: its body, its sender
// in Lobby-From and its seq in Lobby-Seq. A record of several carries
// the first one's seq and sender in those headers, their count in
// Lobby-Count, and a body of, for each message in order, its sender's 16
// bytes, its length as a uvarint and its bytes; their seqs follow the
// first one's. All of a record's messages are stored, or none, and in
// their order: one stream message is.
const headerCount = "Lobby-Count"

// Limits of a record of several messages: a longer queue is stored in
// several records, one after the other.
const (
	// recordMessages is the most messages a record holds.
	recordMessages = 64
	// recordBytes is the most bytes of messages a record of several
	// holds, short of the server's max_payload (less headers); a message
	// larger than that is a record of its own.
	recordBytes = 256 << 10
)

// recordLen is how many of queue's first appends go in one record: the
// first, and the ones after it while they fit within limit bytes. An
// append with an idempotency key is a record of its own, its key the
// record's message id, so that the stream's window of duplicates knows
// it.
func recordLen(queue []pendingAppend, limit int) int {
	if len(queue) == 0 || queue[0].key != "" {
		return min(len(queue), 1)
	}
	n, size := 1, recordSize(queue[0].msg)
	for n < len(queue) && n < recordMessages {
		a := queue[n]
		if a.key != "" || size+recordSize(a.msg) > limit {
			break
		}
		size += recordSize(a.msg)
		n++
	}
	return n
}

// recordSize is what msg takes in a record's body.
func recordSize(msg json.RawMessage) int {
	return len(uuid.UUID{}) + binary.MaxVarintLen32 + len(msg)
}

// encodeRecord is the body of a record of several appends.
func encodeRecord(batch []pendingAppend) []byte {
	size := 0
	for _, a := range batch {
		size += recordSize(a.msg)
	}
	body := make([]byte, 0, size)
	for _, a := range batch {
		body = append(body, a.from[:]...)
		body = binary.AppendUvarint(body, uint64(len(a.msg)))
		body = append(body, a.msg...)
	}
	return body
}

// recordHeader is the headers of a record of count messages, the first
// one from from and the room's seq first.
func recordHeader(from uuid.UUID, count int, first uint64) nats.Header {
	h := nats.Header{
		headerFrom: []string{from.String()},
		headerSeq:  []string{strconv.FormatUint(first, 10)},
	}
	if count > 1 {
		h[headerCount] = []string{strconv.Itoa(count)}
	}
	return h
}

// decode is a stored record as a room sees it: its messages, in order,
// each with its seq in the room (Lobby-Seq, the first one's). A message
// stored without one (by an older Lobby) counts by its stream sequence,
// which keeps the room's seqs increasing. A record whose body does not
// hold what its headers say is given as the messages it holds whole: a
// room's follow then finds the rest missing, and says so.
func decode(stream uint64, h nats.Header, data []byte, at time.Time) []broker.StreamMessage {
	seq := stream
	if s := h.Get(headerSeq); s != "" {
		if n, err := strconv.ParseUint(s, 10, 64); err == nil {
			seq = n
		}
	}
	count := 1
	if s := h.Get(headerCount); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 1 && n <= recordMessages {
			count = n
		}
	}
	if count == 1 {
		from, _ := uuid.Parse(h.Get(headerFrom))
		return []broker.StreamMessage{{Seq: seq, From: from, Msg: data, At: at}}
	}
	out := make([]broker.StreamMessage, 0, count)
	for i := range count {
		if len(data) < len(uuid.UUID{}) {
			break
		}
		var from uuid.UUID
		copy(from[:], data)
		data = data[len(from):]
		n, w := binary.Uvarint(data)
		if w <= 0 || n > uint64(len(data)-w) {
			break
		}
		data = data[w:]
		out = append(out, broker.StreamMessage{Seq: seq + uint64(i), From: from, Msg: data[:n:n], At: at})
		data = data[n:]
	}
	return out
}
