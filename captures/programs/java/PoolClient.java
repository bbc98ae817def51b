// The client side of captures/record-apps: an Apache HttpClient 4.5 pool
// (PoolingHttpClientConnectionManager) in one of three configurations, each the way an
// application would configure it:
//
//   honoured  the default ConnectionKeepAliveStrategy, which honours the server's
//             "Keep-Alive: timeout=N": an expired connection is closed when the pool next
//             hands it out, so it sits in CLOSE_WAIT from the server's FIN until then;
//   ignored   a strategy that keeps connections forever and no stale check: the seed's leak;
//             the next request on a connection the server closed draws a RST;
//   evictor   an idle-connection evictor thread (HttpClientBuilder.evictIdleConnections, 1 s):
//             idle connections are closed by the client, in sweeps once a second.
//
// Usage: PoolClient MODE URL CONNECTIONS SPACING_MS SERVER_SLEEP_MS PAUSE_MS SECOND_ROUND
// Round one: CONNECTIONS threads start SPACING_MS apart, each sends GET URL?ms=SERVER_SLEEP_MS
// (the server holds each request that long, so the requests overlap and each gets its own
// connection). Then the client waits PAUSE_MS and sends SECOND_ROUND requests the same way.
// One JSON line per event on stdout; t is seconds since the program started.
import java.net.Socket;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.http.HttpResponse;
import org.apache.http.client.methods.CloseableHttpResponse;
import org.apache.http.client.methods.HttpGet;
import org.apache.http.client.protocol.HttpClientContext;
import org.apache.http.conn.ConnectionKeepAliveStrategy;
import org.apache.http.conn.ManagedHttpClientConnection;
import org.apache.http.impl.client.CloseableHttpClient;
import org.apache.http.impl.client.HttpClientBuilder;
import org.apache.http.impl.conn.PoolingHttpClientConnectionManager;
import org.apache.http.util.EntityUtils;

public class PoolClient {
    static final long T0 = System.nanoTime();

    static synchronized void log(String json) {
        double t = (System.nanoTime() - T0) / 1e9;
        System.out.println("{\"who\":\"client\"," + json + ",\"t\":" + String.format("%.6f", t) + "}");
        System.out.flush();
    }

    static String quote(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    public static void main(String[] args) throws Exception {
        String mode = args[0];
        String url = args[1];
        int connections = Integer.parseInt(args[2]);
        long spacing = Long.parseLong(args[3]);
        long serverSleep = Long.parseLong(args[4]);
        long pause = Long.parseLong(args[5]);
        int second = Integer.parseInt(args[6]);

        PoolingHttpClientConnectionManager pool = new PoolingHttpClientConnectionManager();
        pool.setMaxTotal(200);
        pool.setDefaultMaxPerRoute(200);
        HttpClientBuilder builder = HttpClientBuilder.create().setConnectionManager(pool);
        switch (mode) {
            case "honoured":
                break; // DefaultConnectionKeepAliveStrategy; stale check after 2 s idle (default)
            case "ignored":
                ConnectionKeepAliveStrategy forever = (HttpResponse r, org.apache.http.protocol.HttpContext c) -> -1;
                builder.setKeepAliveStrategy(forever).disableAutomaticRetries();
                pool.setValidateAfterInactivity(-1);
                break;
            case "evictor":
                builder.evictIdleConnections(1, TimeUnit.SECONDS);
                break;
            default:
                throw new IllegalArgumentException(mode);
        }
        CloseableHttpClient client = builder.build();
        log("\"ev\":\"start\",\"mode\":" + quote(mode));
        round(client, url, connections, spacing, serverSleep, 1);
        Thread.sleep(pause);
        if (second > 0) {
            round(client, url, second, spacing, serverSleep, 2);
        }
        log("\"ev\":\"done\"");
        // The process is killed after the capture ends: closing the client here would shut the
        // pool down and reset its connections, which is not the story.
        Thread.sleep(600_000);
    }

    static void round(CloseableHttpClient client, String url, int n, long spacing, long serverSleep, int roundNo)
            throws InterruptedException {
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            final int index = i;
            Thread th = new Thread(() -> request(client, url + "?ms=" + serverSleep, roundNo, index));
            th.start();
            threads.add(th);
            Thread.sleep(spacing);
        }
        for (Thread th : threads) {
            th.join();
        }
    }

    static void request(CloseableHttpClient client, String url, int roundNo, int index) {
        HttpClientContext ctx = HttpClientContext.create();
        String where = "\"round\":" + roundNo + ",\"index\":" + index;
        try (CloseableHttpResponse resp = client.execute(new HttpGet(url), ctx)) {
            String local = "";
            ManagedHttpClientConnection conn = ctx.getConnection(ManagedHttpClientConnection.class);
            Socket s = conn == null ? null : conn.getSocket();
            if (s != null) {
                local = s.getLocalAddress().getHostAddress() + ":" + s.getLocalPort();
            }
            String keepAlive = resp.getFirstHeader("Keep-Alive") == null ? null
                    : resp.getFirstHeader("Keep-Alive").getValue();
            EntityUtils.consume(resp.getEntity()); // releases the connection to the pool
            log("\"ev\":\"response\"," + where + ",\"status\":" + resp.getStatusLine().getStatusCode()
                    + ",\"local\":" + quote(local) + ",\"keep_alive\":" + (keepAlive == null ? "null" : quote(keepAlive)));
        } catch (Exception e) {
            log("\"ev\":\"error\"," + where + ",\"exception\":" + quote(e.getClass().getName())
                    + ",\"message\":" + quote(String.valueOf(e.getMessage())));
        }
    }
}
