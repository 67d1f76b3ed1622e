// Package examples holds actor types of one's own, each a package that
// extends Lobby through one seam, with a compiled Example that registers
// it in one line and serves it:
//
//	shout      a socket kind: a WebSocket route of its own (socket.Kind)
//	timebot    a resident: a bot that lives in rooms (chat.Resident)
//	moderated  a room policy: which messages a room takes (chat.Policy)
//
// An example may import actors/socket, actors/chat and messages; its
// tests may import anything.
package examples
