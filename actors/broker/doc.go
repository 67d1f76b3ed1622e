// Package broker is the seam between a node's rooms and where their
// messages live: the Broker interface (one stream of messages per room,
// in one order for every node, with its history; plain messages between
// nodes), and MemoryBroker, a single node's, the default. Package
// actors/cluster implements Broker on NATS JetStream.
//
// It may import messages and nothing else of Lobby's; not protoactor-go,
// net/http, the WebSocket library or NATS.
package broker
