package transport

import (
	"encoding/base64"
	"net/http"
	"strings"
)

// handshakeError is a WebSocket handshake that cannot succeed, answered
// before the upgrade with the JSON error shape.
type handshakeError struct {
	status        int
	code, message string
}

// checkHandshake checks what coder/websocket's Accept would refuse with a
// text/plain answer (RFC 6455 section 4.2.1), so that every refusal is the
// JSON error every other route gives. r has asked for an upgrade already
// (isUpgrade).
func checkHandshake(w http.ResponseWriter, r *http.Request) *handshakeError {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		return &handshakeError{http.StatusMethodNotAllowed, codeMethodNotAllowed, "a WebSocket handshake is a GET request"}
	}
	if !r.ProtoAtLeast(1, 1) {
		return &handshakeError{http.StatusBadRequest, codeInvalidHandshake, "a WebSocket handshake needs HTTP/1.1, not " + r.Proto}
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		return &handshakeError{http.StatusUpgradeRequired, codeUnsupportedVersion, "only WebSocket version 13 is supported"}
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return &handshakeError{http.StatusBadRequest, codeInvalidHandshake, "a WebSocket handshake needs exactly one Sec-WebSocket-Key"}
	}
	if k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keys[0])); err != nil || len(k) != 16 {
		return &handshakeError{http.StatusBadRequest, codeInvalidHandshake, "Sec-WebSocket-Key must be 16 bytes in base64"}
	}
	return nil
}
