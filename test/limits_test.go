package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/transport"
)

// dialStalled connects a lobby.v1 client with a 4 KiB receive buffer that
// reads its welcome and then never reads again: the kernel buffers between
// it and the server fill within a few frames.
func dialStalled(t *testing.T, ts *testServer, path string) (*websocket.Conn, string) {
	t.Helper()
	dialer := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	hc := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
	ws := dialWS(t, ts, path, &websocket.DialOptions{HTTPClient: hc, Subprotocols: []string{transport.SubprotocolJSON}})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, data, err := ws.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var welcome struct{ ID string }
	if err := json.Unmarshal(data, &welcome); err != nil {
		t.Fatal(err)
	}
	return ws, welcome.ID
}

// TestSlowConsumerIsClosedAndNobodyElseSuffers: 200 members, one of which
// stops reading; 5 000 messages of 1 KiB are published. The 199 others get
// every one in order, the stalled one is closed as a slow consumer, and the
// server's heap stays bounded.
func TestSlowConsumerIsClosedAndNobodyElseSuffers(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 1 GB over loopback")
	}
	const (
		members      = 200
		total        = 5000
		writeTimeout = 2 * time.Second
	)
	// The client timeout is out of the way: the stalled client must be
	// closed for what it does not read, not for the pongs it does not send.
	ts := startServer(t, transport.Config{Config: actors.Config{ClientTimeout: time.Hour, Logger: quietLogger(t)}, WriteTimeout: writeTimeout})
	_, stalledID := dialStalled(t, ts, "/ws/slow")

	type result struct {
		err    error
		leftAt time.Time
	}
	results := make(chan result, members-1)
	var readers []*jsonClient
	for range members - 1 {
		readers = append(readers, joinJSON(t, ts, "/ws/slow"))
	}
	for _, c := range readers {
		go func() {
			var res result
			defer func() { results <- res }()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			next := uint64(1)
			for next <= total {
				_, data, err := c.ws.Read(ctx)
				if err != nil {
					res.err = fmt.Errorf("member %s after seq %d: %w", c.id, next-1, err)
					return
				}
				// 199 readers of 5 000 frames: scan for the two fields
				// needed rather than decode 1 GB of JSON.
				typ, seq := scanFrame(data)
				switch {
				case typ == "message" && seq == next:
					next++
				case typ == "left" && strings.Contains(string(data), stalledID):
					res.leftAt = time.Now()
				case typ == "message":
					res.err = fmt.Errorf("member %s: seq %d after %d", c.id, seq, next-1)
					return
				}
			}
		}()
	}

	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	base := m.HeapInuse
	var peak atomic.Uint64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peak.Load() {
					peak.Store(m.HeapInuse)
				}
			}
		}
	}()

	payload := strings.Repeat("x", 1000)
	var pub sync.WaitGroup
	var next atomic.Int64
	for range 2 {
		pub.Go(func() {
			for {
				n := next.Add(1)
				if n > total {
					return
				}
				status, body := httpDo(t, "POST", ts.url("/rooms/slow/broadcast"), fmt.Appendf(nil, `{"n":%d,"pad":"%s"}`, n, payload), nil)
				if status != http.StatusOK {
					t.Errorf("publish %d: %d %s", n, status, body)
					return
				}
			}
		})
	}
	pub.Wait()
	published := time.Now()

	var sawLeft int
	for range members - 1 {
		res := <-results
		if res.err != nil {
			t.Error(res.err)
			continue
		}
		if !res.leftAt.IsZero() {
			sawLeft++
			if late := res.leftAt.Sub(published); late > writeTimeout+2*time.Second {
				t.Errorf("the stalled member was closed %v after the last publish; the write timeout is %v", late, writeTimeout)
			}
		}
	}
	close(stopSampling)
	<-sampled
	if sawLeft != members-1 {
		t.Errorf("%d of %d members saw the stalled member leave", sawLeft, members-1)
	}
	waitMetric(t, ts, `lobby_disconnects_total{reason="slow_consumer"}`, 1)
	// Bound: each member's queue holds at most 256 frames, and a frame's
	// bytes are shared by every member, so the server holds at most a few
	// hundred distinct 1 KiB frames, 100 of history, and a 64 KiB batch
	// buffer per connection writing at that moment (12.5 MiB for 200),
	// plus the test's own clients' garbage. Queuing per member what the
	// stalled one cannot take would hold 5 MB for it, and copying frames per
	// member 1 GB.
	const bound = 64 << 20
	if grew := int64(peak.Load()) - int64(base); grew > bound {
		t.Errorf("heap in use grew by %d MiB during the run, bound %d MiB", grew>>20, bound>>20)
	}
	t.Logf("heap in use: %d MiB before, peak %d MiB", base>>20, peak.Load()>>20)
}

// scanFrame reads the type and seq of a lobby.v1 server frame, which the
// server writes with "type" first and "seq" before "msg".
func scanFrame(data []byte) (typ string, seq uint64) {
	s := string(data)
	if rest, ok := strings.CutPrefix(s, `{"type":"`); ok {
		typ, _, _ = strings.Cut(rest, `"`)
	}
	if i := strings.Index(s, `"seq":`); i >= 0 {
		for _, c := range s[i+len(`"seq":`):] {
			if c < '0' || c > '9' {
				break
			}
			seq = seq*10 + uint64(c-'0')
		}
	}
	return typ, seq
}

// TestQuestionnaireStoreIsBounded: creates stop at nine tenths of
// --store-max-bytes with a 507, and the questionnaires already made go on
// taking answers in what is left (issue 21, finding 6: the store grew by
// 250 MB a minute).
func TestQuestionnaireStoreIsBounded(t *testing.T) {
	ts := &testServer{addr: startBinary(t, buildLobby(t), []string{"--addr", "127.0.0.1:0",
		"--create-rate", "-1", "--store-max-bytes", strconv.Itoa(2 << 20)}).addr}
	question := fmt.Sprintf(`{"text":%q,"options":["a","b"]}`, strings.Repeat("q", 300))
	big := `{"title":"t","questions":[` + strings.Repeat(question+",", 99) + question + `]}`
	var made []created
	for len(made) < 100 { // 6 MB asked for
		status, resp := httpDo(t, http.MethodPost, ts.url("/questionnaires"), []byte(big), nil)
		if status != http.StatusCreated {
			expectJSONError(t, status, resp, http.StatusInsufficientStorage, "store_full")
			break
		}
		var c created
		if err := json.Unmarshal(resp, &c); err != nil {
			t.Fatal(err)
		}
		made = append(made, c)
	}
	if len(made) == 0 || len(made) == 100 {
		t.Fatalf("%d questionnaires of ~60 KB made under a 2 MiB store", len(made))
	}
	presenter := dialPresenter(t, ts, made[0])
	presenter.send(`{"type":"show","question":0}`)
	var participants []*client
	for i := range 50 {
		p := dialParticipant(t, ts, made[0], fmt.Sprintf("p%d", i))
		participants = append(participants, p)
		p.send(`{"type":"answer","question":0,"option":1}`)
	}
	eventually(t, "50 answers stored in a full store", func() bool {
		r := getResults(t, ts, made[0])
		return len(r.Results) > 0 && r.Results[0][1] == 50
	})
	hangUp(append(participants, presenter)...)
}
