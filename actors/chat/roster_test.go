package chat

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
)

// rosterRig runs a presence with an env that records what it does.
type rosterRig struct {
	p         roster
	published []published
	told      []any
	up        bool
}

type published struct {
	subject, reply string
	msg            rosterMsg
}

func newRosterRig() *rosterRig {
	return &rosterRig{p: newRoster("me", rosterConfig{interval: time.Hour, timeout: 8 * time.Second}), up: true}
}

func (r *rosterRig) env() rosterEnv {
	return rosterEnv{
		publish: func(subject, reply string, data []byte) error {
			var m rosterMsg
			_ = json.Unmarshal(data, &m)
			r.published = append(r.published, published{subject, reply, m})
			return nil
		},
		tell:  func(msg any) { r.told = append(r.told, msg) },
		after: func(time.Duration, any) *time.Timer { return time.NewTimer(time.Hour) },
		up:    func() bool { return r.up },
	}
}

func (r *rosterRig) hear(m rosterMsg) { r.p.receive(r.env(), &rosterIn{msg: &m}) }

// asked reports whether a snapshot was asked of node since the last call.
func (r *rosterRig) asked(node string) bool {
	defer func() { r.published = nil }()
	for _, p := range r.published {
		if p.subject == subjectSync+node && p.reply == subjectSnapshot+"me" {
			return true
		}
	}
	return false
}

func (r *rosterRig) takeTold() []any {
	t := r.told
	r.told = nil
	return t
}

func TestPresenceFollowsAnotherNode(t *testing.T) {
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	tests := []struct {
		name string
		run  func(t *testing.T, r *rosterRig)
	}{
		{name: "a new node is asked for a snapshot, then its batches apply in order", run: func(t *testing.T, r *rosterRig) {
			r.hear(rosterMsg{Node: "n1", Kind: kindHeartbeat, Seq: 4})
			if !r.asked("n1") {
				t.Fatal("no snapshot asked of a new node")
			}
			r.hear(rosterMsg{Node: "n1", Kind: kindOps, Seq: 5, Ops: []rosterOp{{Room: "r", ID: b}}})
			r.hear(rosterMsg{Node: "n1", Kind: kindSnapshot, Seq: 4, Part: 1, Parts: 1, Rooms: map[string][]uuid.UUID{"r": {a}}})
			told := r.takeTold()
			if len(told) != 2 || *told[0].(*remoteJoin) != (remoteJoin{"r", a}) || *told[1].(*remoteJoin) != (remoteJoin{"r", b}) {
				t.Fatalf("told %v, want a then b joined", told)
			}
			if r.p.where[a] != "n1" || r.p.where[b] != "n1" {
				t.Fatalf("where %v", r.p.where)
			}
		}},
		{name: "a missed batch is repaired by a snapshot's difference", run: func(t *testing.T, r *rosterRig) {
			r.hear(rosterMsg{Node: "n1", Kind: kindHeartbeat})
			r.hear(rosterMsg{Node: "n1", Kind: kindSnapshot, Part: 1, Parts: 1, Rooms: map[string][]uuid.UUID{"r": {a, b}}})
			r.takeTold()
			r.asked("n1")
			// Batch 1 (a left, c joined) is lost; batch 2 shows the gap.
			r.hear(rosterMsg{Node: "n1", Kind: kindOps, Seq: 2, Ops: []rosterOp{{Left: true, Room: "r", ID: b}}})
			if !r.asked("n1") {
				t.Fatal("a gap did not ask for a snapshot")
			}
			r.hear(rosterMsg{Node: "n1", Kind: kindSnapshot, Seq: 1, Part: 1, Parts: 2, Rooms: map[string][]uuid.UUID{"r": {b}}})
			if told := r.takeTold(); len(told) != 0 {
				t.Fatalf("told %v before the snapshot was whole", told)
			}
			r.hear(rosterMsg{Node: "n1", Kind: kindSnapshot, Seq: 1, Part: 2, Parts: 2, Rooms: map[string][]uuid.UUID{"s": {c}}})
			got := map[any]bool{}
			for _, m := range r.takeTold() {
				switch m := m.(type) {
				case *remoteJoin:
					got["join "+m.room+" "+m.id.String()] = true
				case *remoteLeave:
					got["leave "+m.room+" "+m.id.String()] = true
				}
			}
			want := []string{"leave r " + a.String(), "join s " + c.String(), "leave r " + b.String()}
			if len(got) != len(want) {
				t.Fatalf("told %v, want %v", got, want)
			}
			for _, w := range want {
				if !got[w] {
					t.Fatalf("told %v, want %v", got, want)
				}
			}
		}},
		{name: "a silent node is dropped, unless this node is cut off", run: func(t *testing.T, r *rosterRig) {
			r.hear(rosterMsg{Node: "n1", Kind: kindHeartbeat})
			r.hear(rosterMsg{Node: "n1", Kind: kindSnapshot, Part: 1, Parts: 1, Rooms: map[string][]uuid.UUID{"r": {a}}})
			r.takeTold()
			r.up = false
			r.p.expire(r.env(), time.Now().Add(time.Minute))
			if len(r.p.nodes) != 1 {
				t.Fatal("a node cut off judged another")
			}
			r.up = true
			r.p.expire(r.env(), time.Now().Add(time.Minute))
			if told := r.takeTold(); len(told) != 1 || *told[0].(*remoteLeave) != (remoteLeave{"r", a}) || len(r.p.nodes) != 0 {
				t.Fatalf("told %v, nodes %v: want a left and n1 gone", told, r.p.nodes)
			}
		}},
		{name: "a node whose subject has had no subscriber for the absence time is dropped", run: func(t *testing.T, r *rosterRig) {
			r.hear(rosterMsg{Node: "n1", Kind: kindHeartbeat})
			r.hear(rosterMsg{Node: "n1", Kind: kindSnapshot, Part: 1, Parts: 1, Rooms: map[string][]uuid.UUID{"r": {a}}})
			r.takeTold()
			r.published = nil
			r.p.receive(r.env(), &rosterProbe{})
			if len(r.published) != 1 || r.published[0].subject != subjectDirect+"n1" || r.published[0].reply != subjectProbe+"me.n1" {
				t.Fatalf("published %+v, want one probe of n1's direct subject", r.published)
			}
			now := time.Now()
			absent, probe := r.p.cfg.absent, r.p.cfg.probe
			// absentFor answers every probe of n1 from..to "no responders".
			absentFor := func(from, to time.Duration) {
				for d := from; d <= to; d += probe {
					r.p.absent(r.env(), "n1", now.Add(d))
				}
			}
			absentFor(0, absent-probe)
			if len(r.takeTold()) != 0 {
				t.Fatal("dropped before the absence time")
			}
			// Heard from meanwhile: the absence counts again from the next.
			r.hear(rosterMsg{Node: "n1", Kind: kindHeartbeat})
			absentFor(absent, 2*absent-probe)
			if len(r.takeTold()) != 0 {
				t.Fatal("dropped although heard since the first absence")
			}
			// Two blips, each short of the absence time, with probes that
			// found it there between them: not one absence.
			absentFor(2*absent+3*probe, 3*absent)
			if len(r.takeTold()) != 0 {
				t.Fatal("dropped for two blips, each shorter than the absence time")
			}
			r.up = false
			absentFor(3*absent+probe, 5*absent)
			if len(r.takeTold()) != 0 {
				t.Fatal("a node cut off judged another")
			}
			r.up = true
			absentFor(5*absent+probe, 6*absent+probe)
			if told := r.takeTold(); len(told) != 1 || *told[0].(*remoteLeave) != (remoteLeave{"r", a}) || len(r.p.nodes) != 0 {
				t.Fatalf("told %v, nodes %v: want a left and n1 gone", told, r.p.nodes)
			}
			r.p.absent(r.env(), "n1", now.Add(7*absent)) // a late answer about a node gone
		}},
		{name: "bye drops a node at once", run: func(t *testing.T, r *rosterRig) {
			r.hear(rosterMsg{Node: "n1", Kind: kindHeartbeat})
			r.hear(rosterMsg{Node: "n1", Kind: kindSnapshot, Part: 1, Parts: 1, Rooms: map[string][]uuid.UUID{"r": {a}}})
			r.takeTold()
			r.hear(rosterMsg{Node: "n1", Kind: kindBye})
			if told := r.takeTold(); len(told) != 1 || len(r.p.where) != 0 {
				t.Fatalf("told %v, where %v", told, r.p.where)
			}
		}},
		{name: "local joins are batched and numbered; a snapshot answers them", run: func(t *testing.T, r *rosterRig) {
			r.p.receive(r.env(), &localJoin{room: "r", id: a})
			r.p.receive(r.env(), &localJoin{room: "r", id: b})
			r.p.receive(r.env(), &rosterFlush{})
			if len(r.published) != 1 || r.published[0].msg.Seq != 1 || len(r.published[0].msg.Ops) != 2 {
				t.Fatalf("published %+v, want one batch of two, seq 1", r.published)
			}
			r.published = nil
			r.p.receive(r.env(), &snapshotRequest{reply: "lobby.snap.x"})
			if len(r.published) != 1 || r.published[0].subject != "lobby.snap.x" || len(r.published[0].msg.Rooms["r"]) != 2 {
				t.Fatalf("snapshot %+v", r.published)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newRosterRig()) })
	}
}

// TestPresenceSnapshotPartsAgree asks a node with more members than one
// snapshot part holds for two snapshots at the same seq: the parts are
// the same, so that parts of either request make the whole snapshot.
func TestPresenceSnapshotPartsAgree(t *testing.T) {
	r := newRosterRig()
	for range 2*snapshotPart + 10 {
		r.p.local[uuid.New()] = []string{"r"}
	}
	snapshot := func() []rosterMsg {
		r.published = nil
		r.p.receive(r.env(), &snapshotRequest{reply: "x"})
		var parts []rosterMsg
		for _, p := range r.published {
			if p.msg.Kind == kindSnapshot {
				parts = append(parts, p.msg)
			}
		}
		return parts
	}
	first, second := snapshot(), snapshot()
	if len(first) != 3 || len(second) != 3 {
		t.Fatalf("%d and %d parts, want 3", len(first), len(second))
	}
	seen := map[uuid.UUID]bool{}
	for i := range first {
		a, b := first[i].Rooms["r"], second[i].Rooms["r"]
		if !slices.Equal(a, b) {
			t.Fatalf("part %d differs between two requests", i+1)
		}
		for _, id := range a {
			seen[id] = true
		}
	}
	if len(seen) != len(r.p.local) {
		t.Fatalf("the parts hold %d members, want %d", len(seen), len(r.p.local))
	}
}

// TestPresenceOfAMemberInManyRooms: one id in two rooms of another node
// (a lobby.v1 connection's subscriptions) joins and leaves each room on
// its own; its node is known while it is in any. This node's own member
// in two rooms leaves one, and is in its snapshot in the other.
func TestPresenceOfAMemberInManyRooms(t *testing.T) {
	r := newRosterRig()
	id := uuid.New()
	r.hear(rosterMsg{Node: "n1", Kind: kindHeartbeat, Seq: 0})
	r.hear(rosterMsg{Node: "n1", Kind: kindSnapshot, Seq: 0, Part: 1, Parts: 1})
	r.hear(rosterMsg{Node: "n1", Kind: kindOps, Seq: 1, Ops: []rosterOp{{Room: "r1", ID: id}, {Room: "r2", ID: id}}})
	r.hear(rosterMsg{Node: "n1", Kind: kindOps, Seq: 2, Ops: []rosterOp{{Left: true, Room: "r1", ID: id}}})
	told := r.takeTold()
	if len(told) != 3 || *told[0].(*remoteJoin) != (remoteJoin{"r1", id}) || *told[1].(*remoteJoin) != (remoteJoin{"r2", id}) ||
		*told[2].(*remoteLeave) != (remoteLeave{"r1", id}) {
		t.Fatalf("told %v, want joined r1, joined r2, left r1", told)
	}
	if r.p.where[id] != "n1" {
		t.Fatal("the member's node forgotten while it is still in r2")
	}
	r.hear(rosterMsg{Node: "n1", Kind: kindOps, Seq: 3, Ops: []rosterOp{{Left: true, Room: "r2", ID: id}}})
	if _, ok := r.p.where[id]; ok || len(r.takeTold()) != 1 {
		t.Fatal("the member's node kept after it left its last room")
	}

	mine := uuid.New()
	r.p.receive(r.env(), &localJoin{room: "a", id: mine})
	r.p.receive(r.env(), &localJoin{room: "b", id: mine})
	r.p.receive(r.env(), &localLeave{room: "a", id: mine})
	r.published = nil
	r.p.receive(r.env(), &snapshotRequest{reply: "x"})
	var snap *rosterMsg
	for i := range r.published {
		if r.published[i].msg.Kind == kindSnapshot {
			snap = &r.published[i].msg
		}
	}
	if snap == nil || len(snap.Rooms["a"]) != 0 || !slices.Equal(snap.Rooms["b"], []uuid.UUID{mine}) {
		t.Fatalf("snapshot %+v, want the member in b alone", snap)
	}
}

// TestPresenceOfAMemberInNoRoom: another node's session in no room (GET
// /ws) is known for its direct messages, and no room is told of it.
func TestPresenceOfAMemberInNoRoom(t *testing.T) {
	r := newRosterRig()
	id := uuid.New()
	r.hear(rosterMsg{Node: "n1", Kind: kindHeartbeat, Seq: 0})
	r.hear(rosterMsg{Node: "n1", Kind: kindSnapshot, Seq: 0, Part: 1, Parts: 1, Rooms: map[string][]uuid.UUID{noRoom: {id}}})
	if r.p.where[id] != "n1" || len(r.takeTold()) != 0 {
		t.Fatalf("where %v, told something: want the session's node known, nothing told", r.p.where)
	}
	r.hear(rosterMsg{Node: "n1", Kind: kindOps, Seq: 1, Ops: []rosterOp{{Room: "r", ID: id}, {Left: true, Room: noRoom, ID: id}}})
	if told := r.takeTold(); len(told) != 1 || *told[0].(*remoteJoin) != (remoteJoin{"r", id}) || r.p.where[id] != "n1" {
		t.Fatalf("told %v, want only the join of r", told)
	}
}
