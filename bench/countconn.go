package main

import (
	"net"
	"sync"
)

// countingConn counts the bytes a client connection moves and its turns: a
// read that returns data after the client wrote something since its last
// read ends one request → answer exchange. For a strict request/response
// client the turns are its round trips; pushed data the client acknowledges
// (flow control) adds turns that were not waited for, so it is an upper
// bound there.
type countingConn struct {
	net.Conn
	mu       sync.Mutex
	in, out  uint64
	turns    int
	wroteNow bool // written since the last read
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.in += uint64(n)
		if c.wroteNow {
			c.turns++
			c.wroteNow = false
		}
		c.mu.Unlock()
	}
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.mu.Lock()
		c.out += uint64(n)
		c.wroteNow = true
		c.mu.Unlock()
	}
	return n, err
}

// counts returns the bytes in and out and the turns so far.
func (c *countingConn) counts() (in, out uint64, turns int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.in, c.out, c.turns
}

// connCounter hands out counting connections and sums them.
type connCounter struct {
	mu    sync.Mutex
	conns []*countingConn
}

func (cc *connCounter) wrap(c net.Conn) net.Conn {
	w := &countingConn{Conn: c}
	cc.mu.Lock()
	cc.conns = append(cc.conns, w)
	cc.mu.Unlock()
	return w
}

// connReading is what a connCounter's connections moved so far.
type connReading struct {
	in, out uint64
	turns   int
}

func (cc *connCounter) read() connReading {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	var r connReading
	for _, c := range cc.conns {
		in, out, t := c.counts()
		r.in, r.out, r.turns = r.in+in, r.out+out, r.turns+t
	}
	return r
}

func (r connReading) sub(before connReading) connReading {
	return connReading{r.in - before.in, r.out - before.out, r.turns - before.turns}
}
