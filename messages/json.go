package messages

import (
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// Why a JSON input is refused; the texts are the ones clients see.
var (
	ErrNotJSON = errors.New("not valid JSON")
	ErrNotUTF8 = errors.New("not valid UTF-8")
)

// CheckJSON is the one test every JSON input (a lobby.v1 frame, a
// questionnaire frame, a published body, a questionnaire definition)
// passes before it is relayed or decoded. json.Valid accepts invalid UTF-8
// inside strings; copied into a room's text frames it would make every
// browser in the room drop its connection, again on every recovery. Such
// input is refused, not repaired: JSON is relayed exactly as sent or not
// at all.
func CheckJSON(data []byte) error {
	if !json.Valid(data) {
		return ErrNotJSON
	}
	if !utf8.Valid(data) {
		return ErrNotUTF8
	}
	return nil
}
