// Package transport is Lobby's HTTP face: the routes of SPEC.md, the
// WebSocket upgrade, the publish API and the health endpoints.
//
// It stays thin: each upgraded connection gets one actor (a session, or an
// echo, or any actor type a route names) and one wsConn, the connection's
// single writer behind a bounded queue. The transport reads the socket and
// hands every frame to the actor; everything else happens in the actors.
//
// Server's methods are safe for concurrent use. Lock order: Server.mu
// before wsConn.mu; neither is held while calling into the actors or the
// network.
//
// This package may import actors and messages; actors and messages may not
// import it.
package transport
