// Package test holds Lobby's end-to-end tests: real servers on 127.0.0.1:0,
// real WebSocket clients, real HTTP requests. It has no code of its own
// outside the tests.
package test
