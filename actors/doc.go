// Package actors is the thin face of Lobby's actors to the transport:
// Node starts one actor system with the features below on a few shared
// worker goroutines (internal/dispatch), and gives the transport the calls
// it needs (spawn an actor for a socket, publish, list rooms, the
// questionnaire's calls, drain, shut down). Config says what a node runs.
//
// The features are packages of their own, each with a documented seam:
//
//	socket          the toolkit of every socket actor: Conn, close reasons,
//	                heartbeat, panic guard, hold, rate strikes, Base, Kind
//	echo            GET /echo, the smallest socket actor: the template
//	chat            lobby, rooms, sessions, the bridge between nodes
//	broker          the Broker interface rooms keep their streams in, and
//	                MemoryBroker, a single node's
//	cluster         the Broker on NATS JetStream, for --nats-url
//	questionnaire   live questionnaires, with their store (SQLite)
//	examples/...    actor types of one's own, each one package
//
// An actor type of one's own is a socket.Kind in Config.Sockets: the
// transport serves its route like its own (see actors/examples/shout). A
// room bot is a chat.Resident in Config.Residents, a room policy a
// chat.Policy in Config.Policy (actors/examples/timebot, moderated).
//
// This package may import the feature packages but cluster (the binary
// hands it a Broker), messages and protoactor-go; it may not import
// net/http, the WebSocket library, NATS or transport. Feature packages
// never import it, nor each other, except through the seams named above:
// chat and cluster import broker, every socket actor imports socket, and
// an example imports the seam it extends (chat, socket).
// actors/deps_test.go holds every package of the module to its rules.
package actors
