// Package procreg shrinks protoactor's process registry, whose 32 768
// Go maps cost a node that starts and stops actors all day more garbage
// collection than the actors themselves.
//
// It imports protoactor-go and nothing of Lobby's.
package procreg
