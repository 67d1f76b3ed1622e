package wsconn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// frame encodes one WebSocket frame; masked frames are the client's.
func frame(fin bool, op byte, payload []byte, masked bool) []byte {
	b0 := op
	if fin {
		b0 |= finBit
	}
	var mask byte
	if masked {
		mask = maskBit
	}
	out := []byte{b0}
	switch n := len(payload); {
	case n < len16:
		out = append(out, mask|byte(n))
	case n <= 0xffff:
		out = append(out, mask|len16)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, mask|len64)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if masked {
		key := []byte{1, 2, 3, 4}
		out = append(out, key...)
		for i, c := range payload {
			out = append(out, c^key[i%4])
		}
		return out
	}
	return append(out, payload...)
}

const opCont = 0x0

// clientStream is a client's side of a conversation: frames of every
// length class, pings, pongs (also between the fragments of a message) and
// a close. It returns the stream and what is left once the pongs are out.
func clientStream() (stream, want []byte, pongs int) {
	var s, w bytes.Buffer
	add := func(f []byte, isPong bool) {
		s.Write(f)
		if isPong {
			pongs++
			return
		}
		w.Write(f)
	}
	for _, n := range []int{0, 1, 5, 125, 126, 127, 300, 0xffff, 0x10000, 70000} {
		add(frame(true, opText, bytes.Repeat([]byte{'a'}, n), true), false)
		add(frame(true, opPong, nil, true), true)
	}
	add(frame(false, opText, []byte("frag-1 "), true), false)
	add(frame(true, opPong, []byte("1234"), true), true)
	add(frame(true, opPing, []byte("are you there"), true), false)
	add(frame(false, opCont, []byte("frag-2 "), true), false)
	add(frame(true, opPong, bytes.Repeat([]byte{'p'}, maxCtlSz), true), true)
	add(frame(true, opCont, []byte("frag-3"), true), false)
	add(frame(true, opBinary, []byte{0, 1, 2}, true), false)
	add(frame(true, opPong, nil, true), true)
	add(frame(true, opClose, []byte{0x03, 0xe8}, true), false)
	return s.Bytes(), w.Bytes(), pongs
}

// chunks cuts p at random points, with many one-byte pieces.
func chunks(r *rand.Rand, p []byte) [][]byte {
	var out [][]byte
	for len(p) > 0 {
		n := 1
		if r.IntN(3) > 0 {
			n = 1 + r.IntN(min(len(p), 300))
		}
		out = append(out, p[:n])
		p = p[n:]
	}
	return out
}

func TestInScannerTakesOutPongsWhateverTheChunks(t *testing.T) {
	stream, want, wantPongs := clientStream()
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var s inScanner
		var got []byte
		pongs := 0
		for _, c := range chunks(r, bytes.Clone(stream)) {
			n, p, err := s.filter(c)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			got = append(got, c[:n]...)
			pongs += p
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("round %d: %d bytes out, want %d (the stream without its pongs)", round, len(got), len(want))
		}
		if pongs != wantPongs {
			t.Fatalf("round %d: %d pongs, want %d", round, pongs, wantPongs)
		}
		if !s.atBoundary() {
			t.Fatalf("round %d: the scanner is not at a frame boundary at the end", round)
		}
	}
}

func TestInScannerRefusesBadPongs(t *testing.T) {
	for name, f := range map[string][]byte{
		"unmasked":      frame(true, opPong, nil, false),
		"payload > 125": frame(true, opPong, bytes.Repeat([]byte{'x'}, 126), true),
	} {
		var s inScanner
		data := append(frame(true, opText, []byte("before"), true), f...)
		n, _, err := s.filter(data)
		if !errors.Is(err, errBadPong) {
			t.Errorf("%s: err %v, want errBadPong", name, err)
		}
		if want := frame(true, opText, []byte("before"), true); !bytes.Equal(data[:n], want) {
			t.Errorf("%s: kept %q, want the frame before it", name, data[:n])
		}
	}
	// A fragmented pong, or one with RSV bits, is passed on for
	// coder/websocket to refuse.
	var s inScanner
	bad := frame(false, opPong, nil, true)
	if n, pongs, err := s.filter(bytes.Clone(bad)); err != nil || pongs != 0 || n != len(bad) {
		t.Errorf("fragmented pong: n=%d pongs=%d err=%v, want it passed on", n, pongs, err)
	}
}

func TestTakeStopsAtEveryFrameEnd(t *testing.T) {
	_, frames, _ := clientStream()
	// The frame ends, from the encoder.
	ends := map[int]bool{}
	{
		var s frameScanner
		for i := range frames {
			if s.take(frames[i:i+1]) == 1 && s.atBoundary() {
				ends[i+1] = true
			}
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 100 {
		var s frameScanner
		pos := 0
		for _, c := range chunks(r, frames) {
			for len(c) > 0 {
				n := s.take(c)
				if n == 0 {
					t.Fatalf("round %d: take made no progress at %d", round, pos)
				}
				pos += n
				if n < len(c) && !ends[pos] {
					t.Fatalf("round %d: take stopped at %d, which is no frame end", round, pos)
				}
				if ends[pos] != s.atBoundary() {
					t.Fatalf("round %d: at %d atBoundary=%v, frame end=%v", round, pos, s.atBoundary(), ends[pos])
				}
				c = c[n:]
			}
		}
	}
}

func TestOutScannerSeesBoundariesAndTheClose(t *testing.T) {
	var s outScanner
	for _, f := range [][]byte{
		frame(true, opText, []byte("hello"), false),
		frame(true, opBinary, bytes.Repeat([]byte{1}, 300), false),
		frame(true, opText, bytes.Repeat([]byte{2}, 70000), false),
	} {
		s.scan(f[:len(f)-1])
		if s.atBoundary() {
			t.Fatal("at a boundary one byte before a frame's end")
		}
		s.scan(f[len(f)-1:])
		if !s.atBoundary() || s.closed {
			t.Fatalf("after a whole frame: atBoundary=%v closed=%v", s.atBoundary(), s.closed)
		}
	}
	s.scan(frame(true, opClose, []byte{0x03, 0xe8}, false))
	if !s.closed {
		t.Fatal("the close frame went unseen")
	}
}

// TestDataFramesWaitForTheFrameBeingWritten: coder/websocket writes a
// control frame in two pieces (its write buffer is small); a batch of data
// frames and a ping asked for meanwhile follow the frame, never split it.
func TestDataFramesWaitForTheFrameBeingWritten(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	b := newConn(server, time.Second, nil)
	defer b.Close()
	f := frame(true, opPong, bytes.Repeat([]byte{'x'}, 120), false)
	data := bytes.Repeat([]byte{'d'}, 300)
	want := append(append(bytes.Clone(f), pingFrame...), appendFrameHeader(nil, false, len(data))...)
	want = append(want, data...)
	got := make(chan []byte, 1)
	go func() {
		buf, _ := io.ReadAll(io.LimitReader(client, int64(len(want))))
		got <- buf
	}()
	if _, err := b.Write(f[:50]); err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() { wrote <- b.WriteFrames([]Frame{{Data: data}}, true) }()
	if _, err := b.Write(f[50:]); err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(<-got, want) {
		t.Fatal("the data frames and the ping did not follow the frame being written")
	}
}

// TestDataFramesRefuseAHalfWrittenFrame: a frame coder/websocket left half
// written (its write failed) is never followed by data frames.
func TestDataFramesRefuseAHalfWrittenFrame(t *testing.T) {
	server, client := net.Pipe()
	b := newConn(server, time.Second, nil)
	f := frame(true, opPong, bytes.Repeat([]byte{'x'}, 120), false)
	got := make(chan []byte, 1)
	go func() {
		buf, _ := io.ReadAll(client)
		got <- buf
	}()
	if _, err := b.Write(f[:50]); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteFrames([]Frame{{Data: []byte("data")}}, true); !errors.Is(err, errBrokenFrame) {
		t.Fatalf("WriteFrames after half a frame: %v, want errBrokenFrame", err)
	}
	_ = b.Close()
	if buf := <-got; !bytes.Equal(buf, f[:50]) {
		t.Fatalf("the wire holds %d bytes after half a frame, want only its 50", len(buf))
	}
}

// FuzzInScanner checks that taking the pongs out does not depend on how
// the bytes arrive, and never panics, whatever a client sends.
func FuzzInScanner(f *testing.F) {
	stream, _, _ := clientStream()
	f.Add(stream[:400], uint16(7))
	f.Add(frame(true, opPong, nil, true), uint16(1))
	f.Add([]byte{0x8a, 0xff, 0, 0}, uint16(1))
	f.Add([]byte{0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, uint16(3))
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		var whole inScanner
		one := bytes.Clone(data)
		n1, p1, err1 := whole.filter(one)

		var split inScanner
		two := bytes.Clone(data)
		c := int(cut) % (len(two) + 1)
		n2a, p2a, err2 := split.filter(two[:c])
		var out2 []byte
		out2 = append(out2, two[:n2a]...)
		p2 := p2a
		if err2 == nil {
			n2b, p2b, err := split.filter(two[c:])
			out2 = append(out2, two[c:c+n2b]...)
			p2 += p2b
			err2 = err
		}
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("whole: err %v; in two: err %v", err1, err2)
		}
		if err1 == nil && (!bytes.Equal(one[:n1], out2) || p1 != p2) {
			t.Fatalf("whole: %q (%d pongs); in two at %d: %q (%d pongs)", one[:n1], p1, c, out2, p2)
		}
		if n1 > len(data) {
			t.Fatalf("kept %d of %d bytes", n1, len(data))
		}
		var s frameScanner
		for rest := data; len(rest) > 0; {
			n := s.take(rest)
			if n <= 0 || n > len(rest) {
				t.Fatalf("take returned %d of %d", n, len(rest))
			}
			rest = rest[n:]
		}
	})
}

// tcpPair is a loopback TCP connection: TryWriteFrames needs a file
// descriptor, which net.Pipe has not.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close() })
	return server, client
}

// TestTryWriteFramesKeepsWhatTheSocketRefused: frames the socket does not
// take at once stay in Conn, and a control frame coder/websocket writes
// afterwards follows them instead of cutting into them.
func TestTryWriteFramesKeepsWhatTheSocketRefused(t *testing.T) {
	server, client := tcpPair(t)
	b := newConn(server, 10*time.Second, nil)
	defer b.Close()
	data := bytes.Repeat([]byte{'d'}, 50<<10)
	var want []byte
	for i := 0; !b.Pending(); i++ {
		if i == 1000 {
			t.Fatal("50 MB taken by a socket nobody reads")
		}
		taken, err := b.TryWriteFrames([]Frame{{Data: data}}, false)
		if err != nil || !taken {
			t.Fatalf("TryWriteFrames: taken %v, %v", taken, err)
		}
		want = append(append(want, appendFrameHeader(nil, false, len(data))...), data...)
	}
	if taken, err := b.TryWriteFrames([]Frame{{Data: data}}, false); taken || err != nil {
		t.Fatalf("TryWriteFrames with bytes still held: taken %v, %v; want it left to the writer", taken, err)
	}
	pong := frame(true, opPong, []byte("p"), false)
	want = append(want, pong...)
	got := make(chan []byte, 1)
	go func() {
		buf, _ := io.ReadAll(io.LimitReader(client, int64(len(want))))
		got <- buf
	}()
	if _, err := b.Write(pong); err != nil {
		t.Fatal(err)
	}
	if b.Pending() {
		t.Fatal("bytes still held after a write")
	}
	if !bytes.Equal(<-got, want) {
		t.Fatal("the wire does not hold the frames, whole and in order, then the pong")
	}
}

// TestTryWriteFramesWaitsForNoFrame: while coder/websocket is part way
// through a frame, TryWriteFrames writes nothing and says so.
func TestTryWriteFramesWaitsForNoFrame(t *testing.T) {
	server, _ := tcpPair(t)
	b := newConn(server, time.Second, nil)
	defer b.Close()
	f := frame(true, opPong, bytes.Repeat([]byte{'x'}, 120), false)
	if _, err := b.Write(f[:50]); err != nil {
		t.Fatal(err)
	}
	if taken, err := b.TryWriteFrames([]Frame{{Data: []byte("data")}}, false); taken || err != nil || b.Pending() {
		t.Fatalf("TryWriteFrames mid-frame: taken %v, err %v, pending %v; want nothing done", taken, err, b.Pending())
	}
}
