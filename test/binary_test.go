package test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/lobby/lobby/actors/questionnaire/store"
)

// TestBinaryServesAndDrainsOnSIGTERM runs the real binary the way a user
// does, with settings from flags and from the environment.
func TestBinaryServesAndDrainsOnSIGTERM(t *testing.T) {
	bin := buildLobby(t)
	srv := startBinary(t, bin, []string{"--heartbeat", "1s"}, "LOBBY_ADDR=127.0.0.1:0", "LOBBY_LOG_LEVEL=debug")
	cmd, exited, addr := srv.cmd, srv.exited, srv.addr
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("listening on %s, want 127.0.0.1 from LOBBY_ADDR", addr)
	}
	ts := &testServer{addr: addr}
	a := join(t, ts, "/ws/bin")
	b := join(t, ts, "/bin")
	a.expect(b.id + " just joined!")
	b.send("through the binary")
	a.expect(broadcastFrame(b.id, `"through the binary"`, "bin"))

	// On a loopback address the binary answers loopback names only.
	req, err := http.NewRequest("GET", ts.url("/healthz"), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "rebound.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("Host rebound.example answered %d, want 403", resp.StatusCode)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	a.expectClose(websocket.StatusGoingAway, "server shutting down")
	b.expectClose(websocket.StatusGoingAway, "server shutting down")
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("the binary exited with %v, want 0", err)
		}
	case <-time.After(waitFor):
		t.Fatal("the binary did not exit after SIGTERM")
	}
}

func TestBinaryHelpAndBadFlags(t *testing.T) {
	bin := buildLobby(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	out, err := exec.CommandContext(ctx, bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v\n%s", err, out)
	}
	for _, want := range []string{"--addr", "LOBBY_ADDR", "127.0.0.1:8081", "--data-dir", "LOBBY_DATA_DIR", "./lobby-data", "--heartbeat", "--client-timeout",
		"--send-queue", "--max-message-bytes", "--drain-timeout", "--log-level", "--log-format"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("--help does not mention %q:\n%s", want, out)
		}
	}

	tests := []struct {
		name string
		args []string
		env  string
		want string
	}{
		{name: "unknown flag", args: []string{"--nope"}, want: "flag provided but not defined"},
		{name: "bad duration", args: []string{"--heartbeat", "soon"}, want: "invalid value"},
		{name: "bad environment value", env: "LOBBY_SEND_QUEUE=lots", want: "LOBBY_SEND_QUEUE"},
		{name: "bad log format", args: []string{"--log-format", "xml"}, want: "--log-format"},
		{name: "invalid port", args: []string{"--addr", "127.0.0.1:99999"}, want: "listen"},
		{name: "data dir is a file", args: []string{"--data-dir", bin}, want: "--data-dir"},
		{name: "data dir holds no database", env: "LOBBY_DATA_DIR=" + notADatabase(t), want: "not a database"},
		// Issue 21, finding 11: two processes on one data dir each kept
		// state that the other's writes contradicted.
		{name: "data dir in use by another process", env: "LOBBY_DATA_DIR=" + inUse(t, bin), want: "in use by another Lobby process"},
		// A store that cannot give the participant token secret fails
		// the start, not the first participant's request.
		{name: "participant token secret unusable", env: "LOBBY_DATA_DIR=" + shortSecret(t), want: "participant token secret: 1 bytes in the store, too short"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.CommandContext(ctx, bin, tt.args...)
			cmd.Env = append(os.Environ(), "LOBBY_DATA_DIR="+t.TempDir())
			if tt.env != "" {
				cmd.Env = append(cmd.Env, tt.env)
			}
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 && exit.ExitCode() != 2 {
				t.Fatalf("exit %v, want a failure exit\n%s", err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Fatalf("output does not say %q:\n%s", tt.want, out)
			}
		})
	}
}

func TestBinaryRefusesAnOpenPublishAPIOffLoopback(t *testing.T) {
	bin := buildLobby(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	tests := []struct {
		name string
		args []string
		want string // in the output; "" means it must start
	}{
		{name: "all interfaces, no token", args: []string{"--addr", "0.0.0.0:0"}, want: "--publish-token"},
		{name: "empty host, no token", args: []string{"--addr", ":0"}, want: "--insecure-publish"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.CommandContext(ctx, bin, tt.args...)
			cmd.Env = append(os.Environ(), "LOBBY_DATA_DIR="+t.TempDir())
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit %v, want 1\n%s", err, out)
			}
			if !strings.Contains(string(out), tt.want) || !strings.Contains(string(out), "refusing") {
				t.Fatalf("output does not explain the refusal with %q:\n%s", tt.want, out)
			}
		})
	}
}

// notADatabase is a data directory whose database file is not SQLite.
func notADatabase(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "lobby.db"), []byte(strings.Repeat("not SQLite\n", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// shortSecret is a data directory whose store holds a participant token
// secret of one byte, too short to sign with.
func shortSecret(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	st, err := store.OpenSQLite(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Secret(ctx, "participant-token", 1); err != nil {
		t.Fatal(err)
	}
	return dir
}

// inUse is a data dir that a running Lobby has open.
func inUse(t *testing.T, bin string) string {
	t.Helper()
	dir := t.TempDir()
	startBinary(t, bin, []string{"--addr", "127.0.0.1:0", "--data-dir", dir})
	return dir
}
