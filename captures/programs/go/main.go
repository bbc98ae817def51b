// The Go client of captures/record-apps (31, 32): net/http's Transport, standard library only,
// with the scenario's IdleConnTimeout.
//
// Usage: go-client URL IDLE_CONN_TIMEOUT_MS REQUESTS SPACING_MS PAUSE_MS SECOND_ROUND
//
// Round one sends REQUESTS GETs one after the other, SPACING_MS apart (the Transport reuses its
// one idle connection); then the client waits PAUSE_MS and sends SECOND_ROUND more. One JSON line
// per event on stdout, like PoolClient.java: t is seconds since the program started, epoch the
// wall clock. The dialer wraps each connection so that the log also says what the Transport did
// with it: when a read met EOF (the server's FIN reached the Transport's background read loop)
// and when the Transport closed it (its own idle timeout, or after that EOF). The wrapper only
// observes: it passes every call through unchanged.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

var start = time.Now()
var logMu sync.Mutex

// logEvent prints one JSON line; fields keep their insertion order.
func logEvent(ev string, kv ...interface{}) {
	logMu.Lock()
	defer logMu.Unlock()
	line := fmt.Sprintf(`{"who":"client","ev":%q`, ev)
	for i := 0; i+1 < len(kv); i += 2 {
		v, _ := json.Marshal(kv[i+1])
		line += fmt.Sprintf(`,%q:%s`, kv[i], v)
	}
	now := time.Now()
	line += fmt.Sprintf(`,"t":%.6f,"epoch":%.3f}`, now.Sub(start).Seconds(), float64(now.UnixMilli())/1e3)
	fmt.Println(line)
}

// observedConn reports the end of the stream and the close of one connection.
type observedConn struct {
	net.Conn
	once    sync.Once
	eofOnce sync.Once
}

func (c *observedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if errors.Is(err, io.EOF) {
		c.eofOnce.Do(func() { logEvent("read_eof", "local", c.LocalAddr().String()) })
	} else if err != nil {
		logEvent("read_error", "local", c.LocalAddr().String(), "error", err.Error())
	}
	return n, err
}

func (c *observedConn) Close() error {
	c.once.Do(func() { logEvent("conn_close", "local", c.LocalAddr().String()) })
	return c.Conn.Close()
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

func get(client *http.Client, url string, round, index int) {
	var local string
	trace := &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			local = info.Conn.LocalAddr().String()
			logEvent("got_conn", "round", round, "index", index, "local", local, "reused", info.Reused,
				"was_idle", info.WasIdle, "idle_s", info.IdleTime.Seconds())
		},
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", url, nil)
	if err != nil {
		panic(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		logEvent("error", "round", round, "index", index, "error", err.Error())
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close() // back to the Transport's idle pool
	var keepAlive interface{}
	if v := resp.Header.Get("Keep-Alive"); v != "" {
		keepAlive = v
	}
	logEvent("response", "round", round, "index", index, "status", resp.StatusCode, "local", local,
		"keep_alive", keepAlive, "connection", resp.Header.Get("Connection"))
}

func main() {
	url := os.Args[1]
	idle := time.Duration(atoi(os.Args[2])) * time.Millisecond
	n, spacing, pause, second := atoi(os.Args[3]), atoi(os.Args[4]), atoi(os.Args[5]), atoi(os.Args[6])
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	transport := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			logEvent("dial", "local", c.LocalAddr().String())
			return &observedConn{Conn: c}, nil
		},
		IdleConnTimeout:     idle,
		MaxIdleConnsPerHost: 2,
	}
	client := &http.Client{Transport: transport}
	logEvent("start", "mode", "go", "go", runtime.Version(), "idle_conn_timeout_s", idle.Seconds())
	for i := 0; i < n; i++ {
		if i > 0 {
			time.Sleep(time.Duration(spacing) * time.Millisecond)
		}
		get(client, url, 1, i)
	}
	time.Sleep(time.Duration(pause) * time.Millisecond)
	for i := 0; i < second; i++ {
		if i > 0 {
			time.Sleep(time.Duration(spacing) * time.Millisecond)
		}
		get(client, url, 2, i)
	}
	logEvent("done")
	// killed after the capture: closing idle connections here is not the story
	time.Sleep(10 * time.Minute)
}
