// Package transport is Lobby's HTTP face: the routes of PROTOCOL.md, the
// WebSocket upgrade (websocket.go, handshake.go), a room's server-sent
// events (sse.go: a session whose Conn writes events), the publish API
// (publish.go), the questionnaire routes (questionnaire.go), the web UI's
// embedded pages and files (web.go, web/), health and metrics, and the
// limits a client meets before any actor sees it: origin, Host and token
// checks (auth.go), the per-address connect rate (connectrate.go), the
// node-wide body budget, and the frame, byte and control-frame rates of
// each connection.
//
// It stays thin: each upgraded connection gets one actor (a session, a
// questionnaire socket, or any socket kind the node serves: echo and the
// actor types of Config.Sockets) and one wsConn, a bounded queue that
// the actor's turn flushes itself, with a writer goroutine for what the
// socket does not take at once (conn.go), over a wsconn.Conn that
// writes a batch in one syscall and keeps the heartbeat below
// coder/websocket (package wsconn). The transport reads the socket and
// hands every frame to the actor; everything else happens in the actors.
//
// Server's methods are safe for concurrent use. Lock order: Server.mu
// before wsConn.mu or sseConn.mu. wsconn.Conn's write and read locks,
// connectLimiter.mu and bodyBudget.mu are each taken alone. None is held while calling into
// the actors.
//
// Import rules (actors/deps_test.go checks every package's): of the
// project's packages, transport imports actors (the node, its Config, its
// Conn), actors/socket (the socket kinds it serves), actors/questionnaire/
// store (the questionnaire store the routes read), messages (the frames
// and CheckJSON) and transport/wsconn; beyond them, protoactor-go's actor
// package (to send to the actors a route spawns), coder/websocket and the
// libraries go.mod lists. No package under actors/ or messages/ imports
// transport; only cmd/ and test/ do.
package transport
