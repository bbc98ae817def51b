//! Test fixtures: hand-built [`ConnectionReport`]s, so summary and renderers can be tested
//! without a capture or the analysis pipeline. Compiled for unit tests only.

use crate::model::{
    Close, CloseKind, CloseSignal, ConnectionReport, DirectionStats, Initiator, PerSide, Side,
    StateChange, ZeekView,
};
use crate::state::TcpState;
use std::net::SocketAddr;

/// Epoch seconds every fixture starts from (2023-11-14T22:13:20Z).
pub const T0: f64 = 1_700_000_000.0;

/// Builds a [`ConnectionReport`]. By default: a client-initiated graceful close of a
/// 1-second connection, client `10.0.0.1:(40000+id)`, server `10.0.0.2:80`, both sides
/// ended CLOSED (the client's TIME_WAIT expired).
pub struct ReportBuilder {
    r: ConnectionReport,
}

fn addr(s: &str) -> SocketAddr {
    s.parse()
        .unwrap_or_else(|e| panic!("fixture address {s:?}: {e}"))
}

impl ReportBuilder {
    pub fn new(id: u64) -> ReportBuilder {
        let start = T0 + id as f64;
        let end = start + 1.0;
        let client = addr(&format!("10.0.0.1:{}", 40000 + id));
        ReportBuilder {
            r: ConnectionReport {
                id,
                client,
                server: addr("10.0.0.2:80"),
                role_inferred: false,
                start,
                end,
                duration: 1.0,
                first_frame: id * 10 + 1,
                last_frame: id * 10 + 10,
                packets: PerSide {
                    client: 5,
                    server: 5,
                },
                bytes: PerSide {
                    client: 100,
                    server: 2000,
                },
                close: Close {
                    kind: CloseKind::Graceful,
                    initiator: Initiator::Client,
                    first: Some(CloseSignal::Fin),
                    first_by: Some(Side::Client),
                    first_at: Some(end - 0.5),
                    first_frame: Some(id * 10 + 7),
                    idle_before_close: Some(0.25),
                    rst_by: None,
                    who_failed_to_respond: None,
                    waiting_since: None,
                    waiting_for: None,
                    explanation: "The client closed first; the server answered with its FIN."
                        .into(),
                    http: None,
                    captured_one_way: None,
                },
                client_state: TcpState::Closed,
                server_state: TcpState::Closed,
                timeline: PerSide {
                    client: vec![
                        StateChange {
                            state: TcpState::SynSent,
                            at: start,
                            frame: Some(id * 10 + 1),
                        },
                        StateChange {
                            state: TcpState::Closed,
                            at: end + 60.0,
                            frame: None,
                        },
                    ],
                    server: vec![StateChange {
                        state: TcpState::Closed,
                        at: end,
                        frame: Some(id * 10 + 10),
                    }],
                },
                tcp: PerSide {
                    client: DirectionStats {
                        fins: 1,
                        ..Default::default()
                    },
                    server: DirectionStats {
                        fins: 1,
                        ..Default::default()
                    },
                },
                zeek: ZeekView {
                    conn_state: "SF".to_string(),
                    history: "ShADadFf".to_string(),
                    ..ZeekView::default()
                },
                http: None,
                found: false,
                segments: None,
            },
        }
    }

    pub fn client(mut self, a: &str) -> Self {
        self.r.client = addr(a);
        self
    }

    pub fn server(mut self, a: &str) -> Self {
        self.r.server = addr(a);
        self
    }

    pub fn duration(mut self, secs: f64) -> Self {
        self.r.duration = secs;
        self.r.end = self.r.start + secs;
        self
    }

    pub fn kind(mut self, kind: CloseKind, initiator: Initiator) -> Self {
        self.r.close.kind = kind;
        self.r.close.initiator = initiator;
        self
    }

    pub fn states(mut self, client: TcpState, server: TcpState) -> Self {
        self.r.client_state = client;
        self.r.server_state = server;
        self
    }

    pub fn idle(mut self, secs: Option<f64>) -> Self {
        self.r.close.idle_before_close = secs;
        self
    }

    /// The motivating case: the server closed an idle connection, the client acknowledged
    /// the FIN and never sent its own, and has waited `waited` seconds by the end of the
    /// capture.
    pub fn unanswered_fin_by_server(mut self, waited: f64) -> Self {
        let c = &mut self.r.close;
        c.kind = CloseKind::UnansweredFin;
        c.initiator = Initiator::Server;
        c.first = Some(CloseSignal::Fin);
        c.first_by = Some(Side::Server);
        c.who_failed_to_respond = Some(Side::Client);
        c.waiting_since = Some(self.r.end - waited);
        c.waiting_for = Some(waited);
        c.explanation =
            "The server closed; the client acknowledged the FIN and never sent its own.".into();
        self.r.client_state = TcpState::CloseWait;
        self.r.server_state = TcpState::FinWait2;
        self.r.zeek = ZeekView {
            conn_state: "S3".to_string(),
            history: "ShADadf".to_string(),
            ..ZeekView::default()
        };
        self
    }

    /// The connection carried `http`; the close verdict's HTTP side is judged from it as
    /// the analysis does.
    pub fn http(mut self, http: crate::http::HttpConversation) -> Self {
        self.r.close.http = crate::http_close::judge(&self.r.close, &http).map(Box::new);
        self.r.http = Some(Box::new(http));
        self
    }

    /// The close: `first` (FIN or RST) by `by` at `at` epoch seconds, with `rst_by`.
    pub fn first_close(
        mut self,
        first: CloseSignal,
        by: Side,
        at: f64,
        rst_by: Option<Side>,
    ) -> Self {
        let c = &mut self.r.close;
        c.first = Some(first);
        c.first_by = Some(by);
        c.first_at = Some(at);
        c.rst_by = rst_by;
        self
    }

    pub fn build(self) -> ConnectionReport {
        self.r
    }
}
