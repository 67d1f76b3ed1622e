package chat

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/lobby/lobby/actors/socket"
)

func TestDecodeClientFrame(t *testing.T) {
	to := uuid.New()
	tests := []struct {
		name  string
		frame string
		typ   string // want, on success
		code  string // want, on failure
		ref   string
	}{
		{name: "broadcast", frame: `{"type":"broadcast","msg":{"a":1},"ref":1}`, typ: "broadcast", ref: "1"},
		{name: "broadcast of null", frame: `{"type":"broadcast","msg":null}`, typ: "broadcast"},
		{name: "direct", frame: `{"type":"direct","to":"` + to.String() + `","msg":"x","ref":"a"}`, typ: "direct", ref: `"a"`},
		{name: "members", frame: `{"type":"members"}`, typ: "members"},
		{name: "null ref is no ref", frame: `{"type":"members","ref":null}`, typ: "members"},
		{name: "unknown fields ignored", frame: `{"type":"members","extra":[1]}`, typ: "members"},
		{name: "not JSON", frame: `{`, code: socket.CodeInvalidJSON},
		{name: "empty", frame: ``, code: socket.CodeInvalidJSON},
		{name: "string", frame: `"broadcast"`, code: socket.CodeInvalidFrame},
		{name: "wrong type of to, ref kept", frame: `{"type":"direct","to":1,"msg":1,"ref":9}`, code: socket.CodeInvalidFrame, ref: "9"},
		{name: "unknown type", frame: `{"type":"nope"}`, code: socket.CodeUnknownType},
		{name: "missing msg", frame: `{"type":"broadcast"}`, code: codeMissingMsg},
		{name: "braced uuid refused", frame: `{"type":"direct","to":"{` + to.String() + `}","msg":1}`, code: codeInvalidTo},
		{name: "urn uuid refused", frame: `{"type":"direct","to":"urn:uuid:` + to.String() + `","msg":1}`, code: codeInvalidTo},
		{name: "subscribe", frame: `{"type":"subscribe","room":"news","ref":1}`, typ: "subscribe", ref: "1"},
		{name: "subscribe with recovery and name", frame: `{"type":"subscribe","room":"news","since":7,"epoch":"e","name":"Ada"}`, typ: "subscribe"},
		{name: "subscribe with null since", frame: `{"type":"subscribe","room":"news","since":null}`, typ: "subscribe"},
		{name: "subscribe without room", frame: `{"type":"subscribe","ref":2}`, code: codeInvalidRoom, ref: "2"},
		{name: "subscribe to a bad name", frame: `{"type":"subscribe","room":"a b"}`, code: codeInvalidRoom},
		{name: "negative since", frame: `{"type":"subscribe","room":"r","since":-1}`, code: codeInvalidSince},
		{name: "fractional since", frame: `{"type":"subscribe","room":"r","since":1.5}`, code: codeInvalidSince},
		{name: "string since", frame: `{"type":"subscribe","room":"r","since":"1"}`, code: codeInvalidSince},
		{name: "long epoch", frame: `{"type":"subscribe","room":"r","epoch":"` + strings.Repeat("e", 65) + `"}`, code: codeInvalidEpoch},
		{name: "control character in name", frame: `{"type":"subscribe","room":"r","name":"a\u0007"}`, code: codeInvalidName},
		{name: "unsubscribe", frame: `{"type":"unsubscribe","room":"r"}`, typ: "unsubscribe"},
		{name: "unsubscribe without room", frame: `{"type":"unsubscribe"}`, code: codeInvalidRoom},
		{name: "broadcast to a room", frame: `{"type":"broadcast","room":"r","msg":1}`, typ: "broadcast"},
		{name: "broadcast to a bad room", frame: `{"type":"broadcast","room":"../x","msg":1}`, code: codeInvalidRoom},
		{name: "members of a room", frame: `{"type":"members","room":"r"}`, typ: "members"},
		{name: "broadcast with a key", frame: `{"type":"broadcast","msg":1,"key":"` + strings.Repeat("k", 64) + `"}`, typ: "broadcast"},
		{name: "empty key", frame: `{"type":"broadcast","msg":1,"key":"","ref":4}`, code: codeInvalidKey, ref: "4"},
		{name: "long key", frame: `{"type":"broadcast","msg":1,"key":"` + strings.Repeat("k", 65) + `"}`, code: codeInvalidKey},
		{name: "key with a space", frame: `{"type":"broadcast","msg":1,"key":"a b"}`, code: codeInvalidKey},
		{name: "key not a string", frame: `{"type":"broadcast","msg":1,"key":5,"ref":6}`, code: socket.CodeInvalidFrame, ref: "6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ferr := decodeClientFrame([]byte(tt.frame))
			switch {
			case tt.code != "" && (ferr == nil || ferr.Code != tt.code):
				t.Fatalf("error %+v, want code %s", ferr, tt.code)
			case tt.code == "" && ferr != nil:
				t.Fatalf("error %+v, want a %s frame", ferr, tt.typ)
			case tt.code == "" && f.Type != tt.typ:
				t.Fatalf("type %q, want %q", f.Type, tt.typ)
			case string(f.Ref) != tt.ref:
				t.Fatalf("ref %q, want %q", f.Ref, tt.ref)
			}
			if tt.typ == "direct" && f.to != to {
				t.Fatalf("to %s, want %s", f.to, to)
			}
		})
	}
}

// FuzzDecodeClientFrame feeds the lobby.v1 decoder arbitrary client bytes:
// it must never panic, and whatever it accepts or echoes must make valid
// server frames.
func FuzzDecodeClientFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"broadcast","msg":{"a":[1,2]},"ref":"r"}`,
		`{"type":"direct","to":"0f8fad5b-d9cb-469f-a165-70867728950e","msg":1}`,
		`{"type":"members","ref":null}`,
		`{"type":"direct","to":7,"ref":{"deep":[1]}}`,
		`[1]`, `"x"`, `{`, ``, `{"type":"\u0000"}`, `{"ref":"` + "\xff" + `"}`,
		`{"type":"subscribe","room":"r","since":3,"epoch":"e","name":"Ada","ref":1}`, `{"type":"unsubscribe","room":"r"}`,
	} {
		f.Add([]byte(s))
	}
	id := uuid.New()
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, ferr := decodeClientFrame(data)
		if len(fr.Ref) > maxRefBytes {
			t.Fatalf("ref of %d bytes kept", len(fr.Ref))
		}
		if ferr != nil {
			if out := socket.AppendErrorFrame(nil, fr.Ref, ferr.Code, ferr.Message); !json.Valid(out) {
				t.Fatalf("error frame %q is not valid JSON", out)
			}
			return
		}
		if fr.Ref != nil {
			if out := appendV1Ack(nil, fr.Ref, "room", 1, false); !json.Valid(out) {
				t.Fatalf("ack %q is not valid JSON", out)
			}
		}
		switch fr.Type {
		case frameTypeBroadcast, frameTypeDirect:
			for _, out := range [][]byte{
				appendV1Message(nil, id, "room", 1, 1700000000000, fr.Msg),
				appendV1Direct(nil, id, fr.Msg),
				appendBroadcast(nil, id, fr.Msg, "room"),
			} {
				if !json.Valid(out) {
					t.Fatalf("frame %q made from %q is not valid JSON", out, data)
				}
			}
		case frameTypeMembers, frameTypeUnsubscribe:
		case frameTypeSubscribe:
			if out := appendV1Welcome(nil, fr.Ref, id, fr.Room, fr.Epoch, fr.since, nil, []memberName{{id, fr.Name}}, true); !json.Valid(out) {
				t.Fatalf("welcome %q made from %q is not valid JSON", out, data)
			}
		default:
			t.Fatalf("accepted type %q", fr.Type)
		}
	})
}
