// Package dispatch runs the mailboxes of a node's actors on a few
// long-lived worker goroutines (an actor.Dispatcher), instead of
// protoactor's goroutine per mailbox run.
//
// It imports nothing of Lobby's and nothing but the standard library.
package dispatch
