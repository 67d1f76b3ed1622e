// Package transport is Lobby's HTTP face: the routes of SPEC.md, the
// WebSocket upgrade (websocket.go, handshake.go), the publish API
// (publish.go), the questionnaire routes (questionnaire.go), the web UI's
// embedded pages and files (web.go, web/), health and metrics, and the
// limits a client meets before any actor sees it: origin, Host and token
// checks (auth.go), the per-address connect rate (connectrate.go), the
// node-wide body budget, and the frame, byte and control-frame rates of
// each connection.
//
// It stays thin: each upgraded connection gets one actor (a session, or an
// echo, or any actor type a route names) and one wsConn, the connection's
// single writer behind a bounded queue (conn.go), over a batchConn that
// writes a batch in one syscall and keeps the heartbeat below
// coder/websocket (batch.go, wire.go). The transport reads the socket and
// hands every frame to the actor; everything else happens in the actors.
//
// Server's methods are safe for concurrent use. Lock order: Server.mu
// before wsConn.mu. batchConn.mu (the write side), batchConn.rmu (the read
// side), connectLimiter.mu and bodyBudget.mu are each taken alone. None is
// held while calling into the actors.
//
// This package may import actors and messages; actors and messages may not
// import it.
package transport
