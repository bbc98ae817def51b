//! The table's HTTP/1.x columns: a connection's conversation (`http`) and its close in
//! HTTP's terms (`close.http`), so SQL engines and dataframes can ask what `--jsonl` says
//! of them (issue 19).
//!
//! Named by the same rule as every other column, the JSON path joined with `_`
//! (`http.keep_alive.timeout_s` → `http_keep_alive_timeout_s`,
//! `close.http.request.idempotent` → `close_http_request_idempotent`), a request line split
//! into its `method`, `target` and `version`. Every one is null when the connection carried
//! no HTTP/1.x (the JSON has no `http`), and the `close_http_*` ones also when it did not
//! close (no `close.http`). The ladder `marks` are not in the table: analyze records none.

use super::columns::{column, count, maybe_text, text, Column, Value};
use closewait_core::http::{GiveUp, HttpConversation, RequestLine};
use closewait_core::http_close::HttpClose;
use closewait_core::model::{ConnectionReport, Side};

fn http(r: &ConnectionReport) -> Option<&HttpConversation> {
    r.http.as_deref()
}

fn close_http(r: &ConnectionReport) -> Option<&HttpClose> {
    r.close.http.as_deref()
}

fn first_request(r: &ConnectionReport) -> Option<&RequestLine> {
    http(r)?.first_request.as_ref()
}

fn last_request(r: &ConnectionReport) -> Option<&RequestLine> {
    http(r)?.last_request.as_ref()
}

fn last_unanswered_request(r: &ConnectionReport) -> Option<&RequestLine> {
    Some(&http(r)?.last_unanswered_request.as_ref()?.request)
}

fn request_hit_by_close(r: &ConnectionReport) -> Option<&RequestLine> {
    Some(&close_http(r)?.request.as_ref()?.request)
}

/// The three columns of a request line (`{prefix}_method`, `_target`, `_version`), all
/// null when `$line` finds none.
macro_rules! request_line_columns {
    ($prefix:literal, $line:expr) => {
        [
            column(
                concat!($prefix, "_method"),
                true,
                Value::Text(|r, b| maybe_text(b, $line(r).map(|l| l.method.as_str()))),
            ),
            column(
                concat!($prefix, "_target"),
                true,
                Value::Text(|r, b| maybe_text(b, $line(r).map(|l| l.target.as_str()))),
            ),
            column(
                concat!($prefix, "_version"),
                true,
                Value::Text(|r, b| maybe_text(b, $line(r).map(|l| l.version.as_str()))),
            ),
        ]
    };
}

/// Columns whose value is one field of the conversation (`$get` takes it), all nullable.
macro_rules! conversation_columns {
    ($($name:literal: $kind:ident($get:expr)),* $(,)?) => {
        [$(column($name, true, Value::$kind(|r| http(r).and_then($get)))),*]
    };
}

/// Columns whose value is one field of `close.http`, all nullable.
macro_rules! close_columns {
    ($($name:literal: $kind:ident($get:expr)),* $(,)?) => {
        [$(column($name, true, Value::$kind(|r| close_http(r).and_then($get)))),*]
    };
}

const COUNTS: [Column; 2] = conversation_columns![
    "http_requests": Int64(|h| count(h.requests)),
    "http_responses": Int64(|h| count(h.responses)),
];

const VERSION: Column = column(
    "http_version",
    true,
    Value::Text(|r, b| maybe_text(b, http(r).and_then(|h| h.version).map(|v| v.as_str()))),
);

const FIRST_REQUEST: [Column; 3] = request_line_columns!("http_first_request", first_request);

const LAST_REQUEST: [Column; 3] = request_line_columns!("http_last_request", last_request);

const STATUS_CODES: Column = column(
    "http_status_codes",
    true,
    Value::CountsByCode(|r| http(r).map(|h| &h.status_codes)),
);

const PERSISTENCE_AND_UNANSWERED: [Column; 6] = conversation_columns![
    "http_last_request_says_close": Bool(|h| Some(h.last_request_says_close)),
    "http_last_response_says_close": Bool(|h| Some(h.last_response_says_close)),
    "http_last_response_persistent": Bool(|h| h.last_response_persistent),
    "http_keep_alive_timeout_s": Int64(|h| h.keep_alive?.timeout_s.and_then(count)),
    "http_keep_alive_max": Int64(|h| h.keep_alive?.max.and_then(count)),
    "http_unanswered_requests": Int64(|h| h.unanswered_requests.and_then(count)),
];

const LAST_UNANSWERED_REQUEST: [Column; 3] = request_line_columns!(
    "http_last_unanswered_request_request",
    last_unanswered_request
);

const GAVE_UP_AND_TIMES: [Column; 13] = conversation_columns![
    "http_last_unanswered_request_idempotent":
        Bool(|h| h.last_unanswered_request.as_ref().map(|u| u.idempotent)),
    "http_switched_protocols": Bool(|h| Some(h.switched_protocols)),
    "http_gave_up_gap": Int64(|h| count(h.gave_up.count(GiveUp::Gap).into())),
    "http_gave_up_oversized_head": Int64(|h| count(h.gave_up.count(GiveUp::OversizedHead).into())),
    "http_gave_up_parse_error": Int64(|h| count(h.gave_up.count(GiveUp::ParseError).into())),
    "http_gave_up_pipeline_overflow": Int64(|h| count(h.gave_up.count(GiveUp::PipelineOverflow).into())),
    "http_first_request_at": Float64(|h| h.first_request_at),
    "http_last_request_at": Float64(|h| h.last_request_at),
    "http_last_response_at": Float64(|h| h.last_response_at),
    "http_first_request_time": Timestamp(|h| h.first_request_at),
    "http_last_request_time": Timestamp(|h| h.last_request_at),
    "http_last_response_time": Timestamp(|h| h.last_response_at),
    "http_last_status": Int32(|h| h.last_status.map(i32::from)),
];

const CLOSE_REASON: [Column; 3] = [
    column(
        "close_http_reason",
        true,
        Value::Text(|r, b| close_http(r).is_some_and(|c| text(b, c.reason.as_str()))),
    ),
    column(
        "close_http_closed_by",
        true,
        Value::Text(|r, b| close_http(r).is_some_and(|c| text(b, c.closed_by.as_str()))),
    ),
    column(
        "close_http_announcement",
        true,
        Value::Text(|r, b| {
            maybe_text(
                b,
                close_http(r)
                    .and_then(|c| c.announcement)
                    .map(|a| a.as_str()),
            )
        }),
    ),
];

const CLOSE_IDLE: [Column; 2] = close_columns![
    "close_http_idle_after_response": Float64(|c| c.idle_after_response),
    "close_http_advertised_timeout": Int64(|c| c.advertised_timeout.and_then(count)),
];

const CLOSE_VERSUS_ADVERTISED: Column = column(
    "close_http_versus_advertised",
    true,
    Value::Text(|r, b| {
        maybe_text(
            b,
            close_http(r)
                .and_then(|c| c.versus_advertised)
                .map(|v| v.as_str()),
        )
    }),
);

const CLOSE_REQUEST: [Column; 3] =
    request_line_columns!("close_http_request_request", request_hit_by_close);

const CLOSE_REQUEST_FACTS: [Column; 2] = close_columns![
    "close_http_request_idempotent": Bool(|c| c.request.as_ref().map(|q| q.idempotent)),
    "close_http_written_after_close": Float64(|c| c.written_after_close),
];

/// Why `side`'s messages stopped being read (`close.http.unread`, only for `unknown`).
fn unread(r: &ConnectionReport, side: Side) -> Option<&'static str> {
    let why = close_http(r)?.unread.as_ref()?.get(side);
    why.map(GiveUp::as_str)
}

/// `close.http.unread.client` and `.server`: null when that side was read to the close.
const CLOSE_UNREAD: [Column; 2] = [
    column(
        "close_http_unread_client",
        true,
        Value::Text(|r, b| maybe_text(b, unread(r, Side::Client))),
    ),
    column(
        "close_http_unread_server",
        true,
        Value::Text(|r, b| maybe_text(b, unread(r, Side::Server))),
    ),
];

/// The HTTP columns in table order: `http`'s in the JSON's order (the timestamps after the
/// float times they repeat), then `close.http`'s.
pub const GROUPS: [&[Column]; 14] = [
    &COUNTS,
    std::slice::from_ref(&VERSION),
    &FIRST_REQUEST,
    &LAST_REQUEST,
    std::slice::from_ref(&STATUS_CODES),
    &PERSISTENCE_AND_UNANSWERED,
    &LAST_UNANSWERED_REQUEST,
    &GAVE_UP_AND_TIMES,
    &CLOSE_REASON,
    &CLOSE_IDLE,
    std::slice::from_ref(&CLOSE_VERSUS_ADVERTISED),
    &CLOSE_REQUEST,
    &CLOSE_REQUEST_FACTS,
    &CLOSE_UNREAD,
];
