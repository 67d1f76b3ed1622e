// Command baseline is the yardstick cmd/lobbybench measures Lobby against:
// the minimal WebSocket hub that most Go chat servers are, with no actors.
// It speaks Lobby's seed protocol on the routes lobbybench uses:
// GET /ws/{room} (and GET /{room}), POST /rooms/{room}/broadcast.
//
// Without flags it is the rawcoder-equivalent: a mutex guards the map of
// rooms; each connection has a queue of frames (a slice under a mutex, so
// that an idle connection holds no buffer) and one writer goroutine that
// writes them through coder/websocket, one frame per write; a broadcast is
// encoded once.
//
// With --batched it is the strongest hub this hardware allows for this
// protocol without actors (see batched.go): a broadcast is encoded once as
// a complete WebSocket frame, header included; a room's members are a
// copy-on-write slice, so a broadcast takes no hub lock; each connection's
// long-lived writer, once woken, takes every frame queued for it and
// writes them in one syscall. coder/websocket does only the handshake, the
// reads and the control frames.
//
// In both modes a queue past 1 024 frames closes the client as a slow
// consumer. The bound is 4 times Lobby's 256 because the unbatched hub
// writes one frame per syscall: when 1 000 members join a room, the joined
// notices (half a million frames) would otherwise close its first members
// before any message is published.
//
//	go run ./test/bench/baseline --addr 127.0.0.1:8090 [--batched]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
)

type client struct {
	id   uuid.UUID
	room string
	ws   *websocket.Conn
	wake chan struct{} // capacity 1: the writer has something to do

	mu      sync.Mutex
	queue   [][]byte
	closing bool
}

const maxQueue = 1024

type hub struct {
	mu    sync.Mutex
	rooms map[string]map[*client]struct{}
}

// send queues frame for c without blocking; a full queue closes c.
func (h *hub) send(c *client, frame []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	if len(c.queue) >= maxQueue {
		c.closing = true
		go c.ws.Close(websocket.StatusPolicyViolation, "slow consumer")
		return
	}
	c.queue = append(c.queue, frame)
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (h *hub) broadcast(room string, frame []byte, skip *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.rooms[room] {
		if c != skip {
			h.send(c, frame)
		}
	}
}

func encode(id uuid.UUID, msg []byte, room string) []byte {
	return fmt.Appendf(nil, `{"id":"%s","msg":%s,"room_id":%q}`, id, msg, room)
}

func (h *hub) serveWS(w http.ResponseWriter, r *http.Request) {
	room := r.PathValue("room")
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	ws.SetReadLimit(64 << 10)
	c := &client{id: uuid.New(), room: room, ws: ws, wake: make(chan struct{}, 1)}
	h.send(c, []byte("your id is "+c.id.String()))
	h.broadcast(room, []byte(c.id.String()+" just joined!"), nil)
	h.mu.Lock()
	if h.rooms[room] == nil {
		h.rooms[room] = make(map[*client]struct{})
	}
	h.rooms[room][c] = struct{}{}
	h.mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-c.wake:
			case <-ctx.Done():
				return
			}
			c.mu.Lock()
			batch := c.queue
			c.queue = nil
			c.mu.Unlock()
			for _, f := range batch {
				// The connection's own context, not a timer per frame: what
				// a plain hub does (a stuck client is closed as a slow
				// consumer when its queue fills, which cancels ctx).
				if err := ws.Write(ctx, websocket.MessageText, f); err != nil {
					ws.CloseNow()
					return
				}
			}
		}
	}()
	for {
		typ, data, err := ws.Read(context.Background())
		if err != nil {
			break
		}
		if typ == websocket.MessageBinary {
			h.send(c, data)
			continue
		}
		msg, _ := json.Marshal(string(data))
		h.broadcast(room, encode(c.id, msg, room), nil)
	}
	h.mu.Lock()
	delete(h.rooms[room], c)
	if len(h.rooms[room]) == 0 {
		delete(h.rooms, room)
	}
	h.mu.Unlock()
	h.broadcast(room, []byte(c.id.String()+" disconnected."), nil)
	cancel()
	<-done
	ws.CloseNow()
}

func (h *hub) publish(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil || !json.Valid(body) {
		http.Error(w, `{"error":"invalid_json"}`, http.StatusBadRequest)
		return
	}
	room := r.PathValue("room")
	h.broadcast(room, encode(uuid.Nil, body, room), nil)
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"ok":true}`)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "address to serve on")
	batched := flag.Bool("batched", false, "write every frame queued for a connection in one write")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file until SIGINT/SIGTERM")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	mux := http.NewServeMux()
	if *batched {
		h := &batchHub{rooms: make(map[string]*batchRoom)}
		mux.HandleFunc("GET /ws/{room}", h.serveWS)
		mux.HandleFunc("GET /{room}", h.serveWS)
		mux.HandleFunc("POST /rooms/{room}/broadcast", h.publish)
	} else {
		h := &hub{rooms: make(map[string]map[*client]struct{})}
		mux.HandleFunc("GET /ws/{room}", h.serveWS)
		mux.HandleFunc("GET /{room}", h.serveWS)
		mux.HandleFunc("POST /rooms/{room}/broadcast", h.publish)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "baseline listening addr=%s\n", ln.Addr())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		<-sig
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		pprof.StopCPUProfile()
		os.Exit(0)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
