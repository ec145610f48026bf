package main

import (
	"net"
	"sync"
)

// vipListener is one cluster's listener on its control-plane endpoint. It remembers the
// connections it accepted so that a cluster whose API servers are all gone drops them at once,
// as clients of a real cluster see when the last kube-apiserver stops: closing a listener alone
// would leave keep-alive and watch connections answering for a cluster that no longer exists.
type vipListener struct {
	net.Listener
	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
}

func newVIPListener(l net.Listener) *vipListener {
	return &vipListener{Listener: l, conns: map[*trackedConn]struct{}{}}
}

func (l *vipListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, owner: l}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	l.conns[tc] = struct{}{}
	return tc, nil
}

// closeAll stops accepting and closes every open connection.
func (l *vipListener) closeAll() {
	_ = l.Listener.Close()
	l.mu.Lock()
	l.closed = true
	conns := l.conns
	l.conns = map[*trackedConn]struct{}{}
	l.mu.Unlock()
	for c := range conns {
		_ = c.Conn.Close()
	}
}

type trackedConn struct {
	net.Conn
	owner *vipListener
	once  sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.owner.mu.Lock()
		delete(c.owner.conns, c)
		c.owner.mu.Unlock()
	})
	return c.Conn.Close()
}
