package actors

import (
	"slices"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/lobby/lobby/messages"
)

// lobbyCluster is the lobby's part on a clustered node: the members of
// other nodes, by room, as the bridge tells them (remoteJoin,
// remoteLeave), so that room lists and member lists are the cluster's;
// rooms are clusterRooms; and what the lobby cannot answer alone (a
// session on another node, a room's stored history) goes to the bridge.
type lobbyCluster struct {
	bridge *actor.PID
	epoch  string
	// remote are other nodes' members by room, in the order learnt.
	remote map[string][]uuid.UUID
}

func newLobbyCluster(bridge *actor.PID, epoch string) *lobbyCluster {
	return &lobbyCluster{bridge: bridge, epoch: epoch, remote: make(map[string][]uuid.UUID)}
}

// hasRemote reports whether room has members on other nodes; false on a
// single node (c nil).
func (c *lobbyCluster) hasRemote(room string) bool {
	return c != nil && len(c.remote[room]) > 0
}

// remoteCount is how many members room has on other nodes; 0 on a single
// node (c nil).
func (c *lobbyCluster) remoteCount(room string) int {
	if c == nil {
		return 0
	}
	return len(c.remote[room])
}

func (c *lobbyCluster) roomProps(name string, stats *Stats, opts []actor.PropsOption) *actor.Props {
	epoch, bridge, remote := c.epoch, c.bridge, slices.Clone(c.remote[name])
	return actor.PropsFromProducer(func() actor.Actor {
		return newClusterRoom(name, epoch, bridge, remote, stats)
	}, opts...)
}

// roomQuery answers GET /rooms/{room} for a room no member of this node
// is in: the bridge reads its last seq from the stream.
func (c *lobbyCluster) roomQuery(ctx actor.Context, room string) {
	ctx.RequestWithCustomSender(c.bridge, &roomQuery{room: room, members: slices.Clone(c.remote[room])}, ctx.Sender())
}

// history answers GET /rooms/{room}/history from the stream, through the
// bridge: the same answer on every node.
func (c *lobbyCluster) history(ctx actor.Context, m *messages.GetHistory, local bool) {
	known := local || len(c.remote[m.Room]) > 0
	ctx.RequestWithCustomSender(c.bridge, &historyQuery{room: m.Room, since: m.Since, known: known}, ctx.Sender())
}

// clusterReceive handles the lobby's cluster messages.
func (l *lobby) clusterReceive(ctx actor.Context) {
	c := l.cluster
	switch m := ctx.Message().(type) {
	case *remoteJoin:
		ids := c.remote[m.room]
		if slices.Contains(ids, m.id) {
			return
		}
		c.remote[m.room] = append(ids, m.id)
		if r, ok := l.rooms[m.room]; ok {
			ctx.Send(r.pid, m)
		} else if len(ids) == 0 {
			l.names.ReplaceOrInsert(m.room)
		}
	case *remoteLeave:
		ids := c.remote[m.room]
		i := slices.Index(ids, m.id)
		if i < 0 {
			return
		}
		ids = slices.Delete(ids, i, i+1)
		if len(ids) == 0 {
			delete(c.remote, m.room)
		} else {
			c.remote[m.room] = ids
		}
		r, ok := l.rooms[m.room]
		if ok {
			ctx.Send(r.pid, m)
		} else if len(ids) == 0 {
			l.names.Delete(m.room)
		}
	case *epochChanged:
		c.epoch = m.epoch
	case *localDirect:
		s, ok := l.sessions[m.msg.To]
		if ok {
			ctx.Send(s.pid, m.msg)
		}
		ctx.Respond(&messages.DirectResult{Delivered: ok})
	}
}
