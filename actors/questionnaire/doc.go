// Package questionnaire is the live questionnaire: a presenter shows
// questions, the audience's screens follow, and answers are tallied as
// they come. Service is its face to the node and the transport; one
// questionnaire actor per questionnaire keeps its state, its store (the
// subpackage store, SQLite) keeps it across restarts, and the presenter
// and participant socket actors speak its frames (transport/PROTOCOL.md,
// "Questionnaire").
//
// A question is of one of four kinds (single, multi, scale, text:
// kinds.go says what each is created and answered with), and each has a
// tally (tally.go) that the actor moves answer by answer and that
// Service.Results counts afresh from the store, so that the presenter's
// screen, GET /results and results.csv are one count. Both start from
// the store's aggregate count (Store.Tally), never from every answer
// loaded, and the actor holds the answers of connected participants
// only: a questionnaire of a million answers opens in under a second.
// Participants have identities the Service issues (identity.go): an id
// and an HMAC token, bounded per questionnaire. A question may have
// a timer, stored as the time it closes, so that a restart neither loses
// nor extends it; the actor only wakes up at that time to tell the
// sockets.
//
// Store calls block, so no actor makes one in Receive: they run on
// goroutines the Service counts (goStore), and their results come back
// as messages.
//
// It may import actors/socket, its store, messages and protoactor-go; not
// another feature package, net/http, the WebSocket library or NATS.
package questionnaire
