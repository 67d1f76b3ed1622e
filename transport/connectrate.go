package transport

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// connectLimiter bounds the WebSocket connects of each remote address.
// The frame rate limit is per connection, so without it a client that
// reconnects after every burst sends as much as it likes.
//
// It keeps a token bucket per address (an IPv6 address's /64, which one
// host may use in full). A bucket that has filled up again says nothing
// a new one would not, so buckets are swept out once a minute; past
// maxTrackedAddrs (a flood from many addresses) new addresses are let
// through untracked rather than refused, so that such a flood cannot lock
// everybody out.
type connectLimiter struct {
	// Static after construction.
	limit rate.Limit
	burst int

	mu        sync.Mutex // guards the fields below
	addrs     map[netip.Prefix]*rate.Limiter
	nextSweep time.Time
}

// maxTrackedAddrs bounds connectLimiter's memory (~200 B an address).
const maxTrackedAddrs = 100_000

// connectSweepEvery is how often full buckets are dropped.
const connectSweepEvery = time.Minute

func newConnectLimiter(perSecond float64, burst int) *connectLimiter {
	if perSecond <= 0 {
		return nil
	}
	return &connectLimiter{limit: rate.Limit(perSecond), burst: burst, addrs: make(map[netip.Prefix]*rate.Limiter)}
}

// allow takes one connect from addr's bucket. When it is empty, it
// reports how long until the next connect would be allowed. share is how
// full the bucket was, from 0 to 1: the connection's frame and byte
// budgets start that full, so that an address reconnecting as fast as it
// may does not get a fresh burst of frames with every connect (the frame
// rate is per connection).
func (l *connectLimiter) allow(addr netip.Addr, now time.Time) (ok bool, wait time.Duration, share float64) {
	if l == nil || !addr.IsValid() {
		return true, 0, 1
	}
	key := addrKey(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.After(l.nextSweep) {
		l.sweepLocked(now)
	}
	lim, tracked := l.addrs[key]
	if !tracked {
		if len(l.addrs) >= maxTrackedAddrs {
			return true, 0, 1
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.addrs[key] = lim
	}
	tokens := lim.TokensAt(now)
	if lim.AllowN(now, 1) {
		return true, 0, min(1, max(0, tokens/float64(l.burst)))
	}
	wait = time.Duration(math.Ceil((1 - tokens) / float64(l.limit) * float64(time.Second)))
	return false, wait, 0
}

func (l *connectLimiter) sweepLocked(now time.Time) {
	for k, lim := range l.addrs {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.addrs, k)
		}
	}
	l.nextSweep = now.Add(connectSweepEvery)
}

// addrKey is the bucket an address counts against.
func addrKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// remoteAddr is the address a request comes from: the TCP peer's, or with
// trustProxy the one the proxy in front names, the last in
// X-Forwarded-For (proxies append the address they saw), else X-Real-IP.
func remoteAddr(r *http.Request, trustProxy bool) netip.Addr {
	if trustProxy {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			last := xff[len(xff)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if a, err := netip.ParseAddr(strings.TrimSpace(last)); err == nil {
				return a
			}
		}
		if a, err := netip.ParseAddr(strings.TrimSpace(r.Header.Get("X-Real-IP"))); err == nil {
			return a
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a
}
