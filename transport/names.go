package transport

// DefaultRoom is the room of GET /ws/.
const DefaultRoom = "lobby"

// maxRoomLen is the longest room name accepted.
const maxRoomLen = 64

// validRoom reports whether name is a room name: 1 to 64 characters of
// A-Z a-z 0-9 _ . -. Checking before the upgrade keeps odd names out of
// logs, metrics labels and the JSON the rooms write.
func validRoom(name string) bool {
	if len(name) == 0 || len(name) > maxRoomLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}
