package main

import (
	"net"
	"syscall"
	"testing"
)

// TestAcceptedConnectionsHaveNoKeepAlive: the heartbeat does keep-alive's
// job, so accepted sockets do not pay for it.
func TestAcceptedConnectionsHaveNoKeepAlive(t *testing.T) {
	ln, err := listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var keepAlive int
	var optErr error
	if err := raw.Control(func(fd uintptr) {
		keepAlive, optErr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
	}); err != nil {
		t.Fatal(err)
	}
	if optErr != nil {
		t.Fatal(optErr)
	}
	if keepAlive != 0 {
		t.Fatalf("SO_KEEPALIVE = %d on an accepted connection, want 0", keepAlive)
	}
}
