package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/bits"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// histogram counts latencies in log-linear buckets (16 per power of two,
// about 6% wide), lock-free, so that every subscriber can record into one.
type histogram struct {
	counts [64 * 16]atomic.Uint64
}

func bucketOf(ns int64) int {
	if ns < 16 {
		return int(max(ns, 0))
	}
	exp := bits.Len64(uint64(ns)) - 1 // ns in [2^exp, 2^(exp+1))
	sub := int(uint64(ns)>>(exp-4)) & 15
	return (exp-3)*16 + sub
}

func bucketValue(i int) int64 {
	if i < 16 {
		return int64(i)
	}
	exp := i/16 + 3
	sub := int64(i % 16)
	return (16 + sub) << (exp - 4)
}

func (h *histogram) record(d time.Duration) { h.counts[bucketOf(int64(d))].Add(1) }

func (h *histogram) reset() {
	for i := range h.counts {
		h.counts[i].Store(0)
	}
}

// quantile returns the latency at or below which q of the samples lie.
func (h *histogram) quantile(q float64) time.Duration {
	var total uint64
	for i := range h.counts {
		total += h.counts[i].Load()
	}
	if total == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= want {
			return time.Duration(bucketValue(i))
		}
	}
	return 0
}

// wsURL turns the base URL into a WebSocket URL for path.
func wsURL(base, path string) string {
	return "ws" + strings.TrimPrefix(strings.TrimSuffix(base, "/"), "http") + path
}

// subscriber is one room member that counts what it receives and records
// the latency of every message that carries a timestamp ("t":<unix ns>).
type subscriber struct {
	ws       *websocket.Conn
	received atomic.Int64
	closed   atomic.Bool
}

func dialMember(ctx context.Context, base, room string) (*subscriber, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, wsURL(base, "/ws/"+room), &websocket.DialOptions{HTTPClient: dialClient})
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(-1)
	if _, _, err := ws.Read(ctx); err != nil { // the welcome line
		ws.CloseNow()
		return nil, err
	}
	return &subscriber{ws: ws}, nil
}

// dialClient gives every WebSocket dial its own connection.
var dialClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// stampKey finds the timestamp in a publish ({"t":..}) and in a chat
// frame, whose text arrives as a JSON string ({\"t\":..}).
var stampKey, escapedStampKey = []byte(`"t":`), []byte(`\"t\":`)

// read counts frames until the connection ends, recording latencies into h.
func (s *subscriber) read(h *histogram) {
	defer s.closed.Store(true)
	for {
		_, data, err := s.ws.Read(context.Background())
		if err != nil {
			return
		}
		j := 0
		if i := bytes.Index(data, stampKey); i >= 0 {
			j = i + len(stampKey)
		} else if i := bytes.Index(data, escapedStampKey); i >= 0 {
			j = i + len(escapedStampKey)
		} else {
			continue // a joined or disconnected notice
		}
		k := j
		for k < len(data) && data[k] >= '0' && data[k] <= '9' {
			k++
		}
		if ns, err := strconv.ParseInt(string(data[j:k]), 10, 64); err == nil {
			h.record(time.Duration(time.Now().UnixNano() - ns))
			s.received.Add(1)
		}
	}
}

// message is a publish body: a timestamp, a sequence number and padding.
func message(n int64, pad string) []byte {
	return fmt.Appendf(nil, `{"t":%d,"n":%d,"pad":"%s"}`, time.Now().UnixNano(), n, pad)
}

// procStat reads a process's CPU time (user+system) and RSS from /proc.
func procStat(pid int) (cpu time.Duration, rssKB int64, err error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the command name, which is in parentheses.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	cpu = time.Duration(utime+stime) * time.Second / ticks
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rssKB, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return cpu, rssKB, nil
}
