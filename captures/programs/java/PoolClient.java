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
//             idle connections are closed by the client, in sweeps once a second;
//   stale-post as ignored, but with HttpClient's default retry handler: round two is one POST
//             then one GET, one after the other, each handed a connection the server closed.
//             Both draw a RST and fail with NoHttpResponseException; the handler retries the GET
//             (idempotent) on a new connection and gives up on the POST (its request was sent).
//
// Usage: PoolClient MODE URL CONNECTIONS SPACING_MS SERVER_SLEEP_MS PAUSE_MS SECOND_ROUND
// Round one: CONNECTIONS threads start SPACING_MS apart, each sends GET URL?ms=SERVER_SLEEP_MS
// (the server holds each request that long, so the requests overlap and each gets its own
// connection). Then the client waits PAUSE_MS and sends SECOND_ROUND requests the same way.
// One JSON line per event on stdout; t is seconds since the program started, epoch the wall
// clock (seconds since 1970, as the capture's timestamps). HttpClient's own log (commons-logging
// on java.util.logging) goes to stderr as the JVM's logging.properties says.
import java.net.Socket;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.http.HttpResponse;
import org.apache.http.client.methods.CloseableHttpResponse;
import org.apache.http.client.methods.HttpGet;
import org.apache.http.client.methods.HttpPost;
import org.apache.http.client.methods.HttpUriRequest;
import org.apache.http.entity.ContentType;
import org.apache.http.entity.StringEntity;
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
        double epoch = System.currentTimeMillis() / 1e3;
        System.out.println("{\"who\":\"client\"," + json + ",\"t\":" + String.format("%.6f", t)
                + ",\"epoch\":" + String.format("%.3f", epoch) + "}");
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
            case "stale-post":
                ConnectionKeepAliveStrategy keep = (HttpResponse r, org.apache.http.protocol.HttpContext c) -> -1;
                builder.setKeepAliveStrategy(keep); // DefaultHttpRequestRetryHandler(3, false) stays
                pool.setValidateAfterInactivity(-1);
                break;
            default:
                throw new IllegalArgumentException(mode);
        }
        CloseableHttpClient client = builder.build();
        log("\"ev\":\"start\",\"mode\":" + quote(mode));
        round(client, url, connections, spacing, serverSleep, 1);
        Thread.sleep(pause);
        if (second > 0 && mode.equals("stale-post")) {
            // one after the other, so each is handed one of the stale connections
            HttpPost post = new HttpPost(url.replaceAll("/$", "") + "/orders");
            post.setEntity(new StringEntity("{\"order\":1}", ContentType.APPLICATION_JSON));
            request(client, post, 2, 0);
            for (int i = 1; i < second; i++) {
                request(client, new HttpGet(url + "?ms=" + serverSleep), 2, i);
            }
        } else if (second > 0) {
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
            Thread th = new Thread(() -> request(client, new HttpGet(url + "?ms=" + serverSleep), roundNo, index));
            th.start();
            threads.add(th);
            Thread.sleep(spacing);
        }
        for (Thread th : threads) {
            th.join();
        }
    }

    static void request(CloseableHttpClient client, HttpUriRequest req, int roundNo, int index) {
        HttpClientContext ctx = HttpClientContext.create();
        String where = "\"round\":" + roundNo + ",\"index\":" + index;
        if (!req.getMethod().equals("GET")) {
            where += ",\"method\":" + quote(req.getMethod());
        }
        try (CloseableHttpResponse resp = client.execute(req, ctx)) {
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
