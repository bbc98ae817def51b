// A one-servlet webapp for captures/record-apps: answers "ok" after ?ms= milliseconds, so that
// concurrent requests overlap and an HttpClient pool opens one connection per request; a POST
// (an order) is read to the end and answered 201.
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;

public class SleepServlet extends HttpServlet {
    @Override
    protected void doGet(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        String ms = req.getParameter("ms");
        if (ms != null) {
            try {
                Thread.sleep(Long.parseLong(ms));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        resp.setContentType("text/plain");
        resp.getWriter().write("ok\n");
    }

    @Override
    protected void doPost(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        req.getInputStream().readAllBytes();
        resp.setStatus(HttpServletResponse.SC_CREATED);
        resp.setContentType("text/plain");
        resp.getWriter().write("created\n");
    }
}
