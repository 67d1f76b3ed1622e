// Package echo is the smallest socket actor, GET /echo: every frame back
// to its sender. It is the template for an actor type of one's own.
//
// It may import actors/socket, messages and protoactor-go, and no other
// feature package.
package echo
