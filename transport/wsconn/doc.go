// Package wsconn is the syscall-level half of a Lobby WebSocket: the
// hijacked TCP connection under coder/websocket (Conn, conn.go) and the
// frame scanners that follow its byte streams (wire.go).
//
// It owns three things. Writes: while the connection's writer holds a
// batch, Conn collects every frame (its own, framed by WriteFrames, and
// the control frames coder/websocket writes) and sends them in one
// write(), under a write deadline. TryWriteFrames writes without
// waiting, for a socket actor at the end of its turn: what the socket
// does not take stays in Conn and goes out first in the writer's next
// write. The heartbeat: pings go into the
// outgoing stream, the client's pongs are taken out of the incoming one,
// and control frames are counted against a budget (ErrControlFlood).
// Idle reads: WaitData waits on the descriptor, holding no buffer, so an
// idle connection costs a parked goroutine with a small stack.
//
// Writer is the http.ResponseWriter handed to websocket.Accept; its
// Hijack makes the Conn. Conn's write side (WriteFrames, Write, Release)
// is guarded by one mutex and its read side (Read, WaitData) by another,
// each taken alone: a connection's single reader and single writer may
// use it at once, and coder/websocket may write a control frame from any
// goroutine.
//
// It knows nothing of rooms, actors, queues or HTTP routes: it may import
// the standard library only (deps_test.go checks it), and only package
// transport imports it.
package wsconn
