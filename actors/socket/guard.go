package socket

import (
	"fmt"
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
)

// CloseOnPanic is deferred around every socket actor's Receive (Props
// does it). A bug that panics while handling one client's message closes
// that client with 1011 and stops its actor, instead of restarting the
// actor (protoactor's default) with its state lost and its socket still
// open.
func CloseOnPanic(ctx actor.Context, conn Conn, log *slog.Logger) {
	// recover works only when called by the deferred function itself.
	r := recover()
	if r == nil {
		return
	}
	log.Error("actor panicked; closing its connection",
		slog.String("actor", ctx.Self().String()),
		slog.String("message", fmt.Sprintf("%T", ctx.Message())),
		slog.Any("panic", r))
	conn.Close(InternalError)
	ctx.Stop(ctx.Self())
}
