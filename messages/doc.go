// Package messages holds the typed messages that Lobby's actors exchange:
// Connect, Disconnect, WsMessage and BroadcastMessage from the Actix "Lobby"
// design, the few requests the transport asks the lobby, and the
// questionnaire's (questionnaire.go: join, leave, show, close, answer).
//
// Messages are plain data. They are sent as pointers and never modified
// after sending, since one value may reach many actors at once (a room hands
// the same WsMessage to every member). This package does no I/O and imports
// none of Lobby's other packages.
package messages
