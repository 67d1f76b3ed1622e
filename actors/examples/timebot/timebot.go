// Package timebot is a bot that lives in rooms: whoever says "!time" in
// a room it lives in is answered with the time, by the bot, in the room.
// Register it in one line,
//
//	cfg.Residents = append(cfg.Residents, timebot.New(time.Now, nil))
//
// and every room (or those In says) spawns one when it starts: it comes
// back whenever its room is made anew, gets the room's typed events
// (messages.RoomWelcome, RoomMessage, MemberJoined, MemberLeft), and,
// not being a member, keeps no room alive.
package timebot

import (
	"encoding/json"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lobby/lobby/actors/chat"
	"github.com/lobby/lobby/actors/socket"
	"github.com/lobby/lobby/messages"
)

// Command is what the bot answers.
const Command = "!time"

// New is the resident: clock tells the time (time.Now, or a test's),
// and in, when not nil, picks the rooms it lives in.
func New(clock func() time.Time, in func(room string) bool) chat.Resident {
	return chat.Resident{Name: "timebot", In: in, New: func(env chat.ResidentEnv) actor.Actor {
		return &bot{env: env, clock: clock}
	}}
}

type bot struct {
	env   chat.ResidentEnv
	clock func() time.Time
}

func (b *bot) Receive(ctx actor.Context) {
	m, ok := ctx.Message().(*messages.RoomMessage)
	// Only what was said through this node: in a cluster every node's
	// timebot hears every message, and one answer is enough.
	if !ok || !m.Local || m.From == b.env.ID {
		return
	}
	var text string
	if json.Unmarshal(m.Msg, &text) != nil || text != Command {
		return
	}
	answer := socket.AppendJSONString(nil, "it is "+b.clock().UTC().Format("15:04:05")+" UTC")
	ctx.Send(ctx.Parent(), &messages.BroadcastMessage{ID: b.env.ID, Msg: answer, RoomID: b.env.Room})
}
