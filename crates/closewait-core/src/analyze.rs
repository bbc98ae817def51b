//! The pipeline glue: inputs → segments → connections → reports.
//!
//! It owns no TCP logic: it streams segments from `capture` into the `flow` table and turns
//! each connection the table hands back into a [`ConnectionReport`] with `classify`.

use crate::capture::{
    CaptureError, CaptureStats, InputSpec, SegmentFeed, SegmentStream, TimeWindow,
};
use crate::classify::{classify, Roles};
/// Which connections get per-segment records: the flow table decides it per connection.
pub use crate::flow::RecordSegments;
use crate::flow::{
    prefetch_connection, Connection, Evictions, FindText, FlowOptions, FlowTable, KnownServers,
    Lookup, Released,
};
use crate::model::{secs, CloseKind, ConnectionReport, PerSide, PostCloseStats, SegmentRecord};
use crate::segment::Segment;
use crate::state::Event;
use crate::tcp::End;
use std::sync::mpsc::{Receiver, SyncSender};

/// Knobs of the analysis.
#[derive(Clone, Debug)]
pub struct AnalyzeOptions {
    /// How long TIME_WAIT lasts before the endpoint is CLOSED (Linux: 60 s, fixed
    /// `TCP_TIMEWAIT_LEN`; RFC 9293: 2×MSL = 240 s).
    pub time_wait_secs: f64,
    /// Which connections get per-segment records (for diagrams).
    pub record_segments: RecordSegments,
    /// At most this many connections are tracked at once; past it the least recently
    /// active one is reported as it stands and dropped (a SYN flood or a port scan must
    /// not exhaust memory). Evictions are counted in a capture warning.
    pub max_connections: usize,
    /// The end of the capture when the user knows it (`--capture-end`), epoch
    /// nanoseconds: connections still open are measured to it. Must not be before the
    /// last packet.
    pub capture_end_ns: Option<i64>,
    /// `--from`/`--until`: only packets inside are analysed, and the end of the capture
    /// is at most `until`.
    pub window: TimeWindow,
    /// `--find TEXT`: every connection is reassembled and searched for this text
    /// ([`ConnectionReport::found`]).
    pub find: Option<Vec<u8>>,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            time_wait_secs: 60.0,
            record_segments: RecordSegments::None,
            max_connections: crate::flow::DEFAULT_MAX_LIVE,
            capture_end_ns: None,
            window: TimeWindow::default(),
            find: None,
        }
    }
}

/// Whether the diagnosis reads this connection's segment records: the keep-alive timings
/// (`keepalive`, `dead_peer`), and the RST that ended it (`half_open`, `late_write`).
pub fn diagnosis_reads_segments(kind: CloseKind, keepalives: PerSide<u64>) -> bool {
    keepalives.client > 0
        || keepalives.server > 0
        || matches!(kind, CloseKind::Abort | CloseKind::FinThenRst)
}

/// How long a finished connection is kept to absorb stray retransmissions before it is
/// reported (Zeek's `tcp_close_delay` is 5 s too).
const CLOSE_DELAY_NS: i64 = 5_000_000_000;

/// Reads all inputs and calls `on_connection` for each connection as it finishes (in
/// finish order; sort by `id` for a stable listing). Returns what was read.
pub fn analyze(
    inputs: &[InputSpec],
    opts: &AnalyzeOptions,
    on_connection: &mut dyn FnMut(ConnectionReport),
) -> Result<CaptureStats, CaptureError> {
    analyze_with_progress(inputs, opts, on_connection, &mut |_| {})
}

/// How far the reading has got, for progress bars.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Bytes read from the inputs as stored (compressed bytes for gzip).
    pub bytes_read: u64,
    /// The inputs' summed size, when all are regular files.
    pub total_bytes: Option<u64>,
    /// Packets read, TCP or not.
    pub packets: u64,
}

/// Packets between two looks for connection boxes handed back by the output thread.
const RETURNS_POLL_EVERY: u64 = 64;

/// Segments read ahead of the one analysed (see [`analyze_finished`]).
const READ_AHEAD: usize = 8;

/// The segments read ahead of their analysis and their lookups, oldest first: a ring
/// of `READ_AHEAD` entries used in place, so that each segment is copied once (out of
/// the feed) rather than in and out of a queue. Each entry keeps its segment's captured
/// payload in a buffer of its own, reused. (Reading a payload where the decoding
/// thread left it instead was measured no faster: the copy is a streaming read of
/// memory the other core wrote, which the parser would otherwise fetch line by line.)
struct AheadRing {
    entries: [(Segment, Lookup); READ_AHEAD],
    payloads: [Vec<u8>; READ_AHEAD],
    head: usize,
    len: usize,
}

impl AheadRing {
    fn new() -> AheadRing {
        let seg = crate::decode::Decoded::empty().segment;
        AheadRing {
            entries: [(seg, Lookup::placeholder()); READ_AHEAD],
            payloads: Default::default(),
            head: 0,
            len: 0,
        }
    }

    fn is_full(&self) -> bool {
        self.len == READ_AHEAD
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn push(&mut self, seg: &Segment, payload: &[u8], lookup: Lookup) {
        debug_assert!(!self.is_full());
        let at = (self.head + self.len) % READ_AHEAD;
        let entry = &mut self.entries[at];
        entry.0 = *seg;
        entry.1 = lookup;
        let kept = &mut self.payloads[at];
        kept.clear();
        kept.extend_from_slice(payload);
        self.len += 1;
    }

    /// The oldest entry (the ring must not be empty).
    fn front(&self) -> (&Segment, &[u8], Lookup) {
        let (seg, lookup) = &self.entries[self.head];
        (seg, &self.payloads[self.head], *lookup)
    }

    fn pop(&mut self) {
        self.head = (self.head + 1) % READ_AHEAD;
        self.len -= 1;
    }

    /// The lookup of the entry `n` places behind the oldest, if there is one.
    fn lookup_mut(&mut self, n: usize) -> Option<&mut Lookup> {
        (n < self.len).then(|| &mut self.entries[(self.head + n) % READ_AHEAD].1)
    }
}

/// Packets between two progress reports: rare enough to cost nothing per packet.
const PROGRESS_EVERY: u64 = 1 << 16;

/// [`analyze`], calling `on_progress` every few tens of thousands of packets.
pub fn analyze_with_progress(
    inputs: &[InputSpec],
    opts: &AnalyzeOptions,
    on_connection: &mut dyn FnMut(ConnectionReport),
    on_progress: &mut dyn FnMut(Progress),
) -> Result<CaptureStats, CaptureError> {
    let tw = opts.time_wait_secs;
    let mut report_now = ReportNow(|mut f: Finished| on_connection(f.report(tw, Buffers::Move)));
    analyze_finished(inputs, opts, &mut report_now, on_progress)
}

/// Where the reading loop hands finished connections over.
trait Handover {
    fn finished(&mut self, finished: Finished);
    /// Passes boxes of connections whose reports are done to `reuse` (asked now and
    /// then).
    fn take_back(&mut self, _reuse: &mut dyn FnMut(Box<Connection>)) {}
}

/// Reports each connection as it is handed over, on the reading thread.
struct ReportNow<F>(F);

impl<F: FnMut(Finished)> Handover for ReportNow<F> {
    fn finished(&mut self, finished: Finished) {
        (self.0)(finished)
    }
}

/// Sends finished connections to the output thread in batches, and takes the batches
/// back once reported: their boxes hold new connections, their vectors new batches.
struct Batches {
    size: usize,
    pending: Vec<Finished>,
    spare: Vec<Vec<Finished>>,
    tx: SyncSender<Vec<Finished>>,
    back: Receiver<Vec<Finished>>,
}

impl Batches {
    fn send_pending(&mut self) {
        let next = self
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.size));
        // The receiver only goes away when the output thread unwinds.
        let _ = self.tx.send(std::mem::replace(&mut self.pending, next));
    }
}

impl Handover for Batches {
    fn finished(&mut self, finished: Finished) {
        self.pending.push(finished);
        if self.pending.len() >= self.size {
            self.send_pending();
        }
    }

    fn take_back(&mut self, reuse: &mut dyn FnMut(Box<Connection>)) {
        while let Ok(mut batch) = self.back.try_recv() {
            for finished in batch.drain(..) {
                reuse(finished.conn);
            }
            self.spare.push(batch);
        }
    }
}

/// The reading loop: hands over each finished connection before its report is built.
fn analyze_finished(
    inputs: &[InputSpec],
    opts: &AnalyzeOptions,
    handover: &mut dyn Handover,
    on_progress: &mut dyn FnMut(Progress),
) -> Result<CaptureStats, CaptureError> {
    // Files are decoded on a thread of their own, ahead of the analysis; standard input
    // (a live capture) here, each segment as soon as it is read.
    let ahead = !inputs.contains(&InputSpec::Stdin);
    let mut stream = if ahead {
        SegmentStream::open_to_decode_ahead(inputs)?
    } else {
        SegmentStream::open(inputs)?
    };
    stream.set_window(opts.window);
    let mut analyzer = Analyzer::new(opts);
    let total_bytes = stream.total_bytes();
    let mut feed = SegmentFeed::new(stream, ahead);
    let mut next_report = PROGRESS_EVERY;
    // Segments are read a few packets ahead of their analysis, so that the memory their
    // connection lookup touches (the index line, then the connection) is fetched while
    // earlier packets are analysed: on big captures most connections are cold by the
    // time their next packet comes.
    let mut ahead = AheadRing::new();
    loop {
        while !ahead.is_full() {
            let Some((seg, payload)) = feed.next_segment() else {
                break;
            };
            ahead.push(&seg, payload, analyzer.table.look_up(&seg));
        }
        if ahead.is_empty() {
            break;
        }
        if let Some(halfway) = ahead.lookup_mut(READ_AHEAD / 2) {
            analyzer.table.prefetch_header(halfway);
        }
        let (seg, payload, lookup) = ahead.front();
        analyzer.push_looked_up(seg, payload, lookup, &mut |f| handover.finished(f));
        let frame = seg.frame;
        ahead.pop();
        // Look for boxes coming back now and then: polling a channel on every packet
        // would pull its shared state from the other core each time.
        if frame % RETURNS_POLL_EVERY == 0 && analyzer.table.wants_boxes() {
            handover.take_back(&mut |conn| analyzer.table.recycle(conn));
        }
        if frame >= next_report {
            next_report = frame + PROGRESS_EVERY;
            on_progress(Progress {
                bytes_read: feed.bytes_consumed(),
                total_bytes,
                packets: frame,
            });
        }
    }
    // The end of the capture: the user's `--capture-end`, else what the files state
    // (pcapng `isb_endtime`), else the last packet, TCP or not (a pcap does not record when
    // the capture was stopped). Connections still open are measured to it.
    let stream = feed.into_stream();
    let last_packet = stream.last_ts_ns().unwrap_or(analyzer.table_now());
    let stated = stream
        .end_ns()
        .map_or(last_packet, |(end, _)| end.max(last_packet));
    let mut stats = stream.into_stats();
    if let Some(user) = opts.capture_end_ns {
        let clipped = opts.window.clip_end(user);
        stats.set_user_end(clipped)?;
        if clipped < user {
            stats.end_source = Some(crate::capture::EndSource::Until);
        }
    }
    // Seen through `--until`, the capture ends there at the latest.
    let capture_end = opts.window.clip_end(opts.capture_end_ns.unwrap_or(stated));
    if let Some(warning) = analyzer.eviction_warning() {
        stats.warnings.push(warning);
    }
    stats.analysis_end_ns = Some(capture_end.max(analyzer.table_now()));
    stats.post_close = analyzer.finish_finished(capture_end, &mut |f| handover.finished(f));
    Ok(stats)
}

/// [`analyze_with_progress`] on a second thread: reading, decoding and the state machines
/// run there, while report building and `on_connection` (filtering, rendering, writing)
/// run on the calling thread. On two cores this overlaps the analysis with the output,
/// which for JSON costs as much as the analysis itself. Finished connections come over in
/// batches when reading files; with standard input each is handed over at once (live
/// captures).
///
/// Memory is freed by the thread that allocated it: the reports are built from copies
/// (allocated and freed here), and each batch of finished connections goes back to the
/// analysis thread, which reuses their boxes for new connections or drops them. Freeing
/// another thread's allocations makes glibc's allocator lock that thread's arena, and the
/// two threads then spent a tenth of their time waking each other up.
pub fn analyze_pipelined(
    inputs: &[InputSpec],
    opts: &AnalyzeOptions,
    on_connection: &mut dyn FnMut(ConnectionReport),
    on_progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<CaptureStats, CaptureError> {
    let batch = if inputs.contains(&InputSpec::Stdin) {
        1
    } else {
        256
    };
    let tw = opts.time_wait_secs;
    std::thread::scope(|scope| {
        // Made in here so that a panic on this thread drops them, which ends the worker.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Finished>>(16);
        let (back_tx, back_rx) = std::sync::mpsc::channel::<Vec<Finished>>();
        let worker = scope.spawn(move || {
            let mut batches = Batches {
                size: batch,
                pending: Vec::with_capacity(batch),
                spare: Vec::new(),
                tx,
                back: back_rx,
            };
            let result = analyze_finished(inputs, opts, &mut batches, on_progress);
            if !batches.pending.is_empty() {
                batches.send_pending();
            }
            let Batches { tx, back, .. } = batches;
            drop(tx);
            // The last batches come back once the output is done.
            for done in back {
                drop(done);
            }
            result
        });
        for mut finished in rx {
            if let Some(second) = finished.get(1) {
                prefetch_connection(&second.conn);
            }
            for i in 0..finished.len() {
                // The connections of a batch have been out of this core's caches since
                // the analysis thread last touched them: fetch the one after next while
                // this one's report is built, and the HTTP conversation of the next one
                // (whose own lines were fetched a report ago).
                if let Some(after_next) = finished.get(i + 2) {
                    prefetch_connection(&after_next.conn);
                }
                if let Some(next) = finished.get(i + 1) {
                    next.conn.streams.prefetch_http();
                }
                on_connection(finished[i].report(tw, Buffers::Copy));
            }
            let _ = back_tx.send(finished);
        }
        drop(back_tx);
        match worker.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// A connection the table handed over, with its roles decided (they depend on the
/// servers known at that point of the capture).
pub struct Finished {
    conn: Box<Connection>,
    /// Capture time (ns) of the hand-over: the "now" of the report.
    now_ns: i64,
    client: usize,
    role_inferred: bool,
    /// See [`Released::ended_by_reuse`]: set on the connection when its report is built.
    ended_by_reuse: Option<(i64, u64)>,
    /// [`RecordSegments::ForDiagnosis`]: leave out the records the diagnosis does not read.
    elide_segments: bool,
}

/// What a report does with the connection's Zeek history (its state changes are converted
/// to the model's seconds either way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buffers {
    /// Moves them into the report: the connection is dropped afterwards, on this thread.
    Move,
    /// Copies them: the connection goes back to the thread that allocated it.
    Copy,
}

impl Finished {
    /// Roles are decided now, with the servers known so far; the connection itself is
    /// only read when its client must be inferred (it was seen without a SYN).
    fn new(released: Released, known_servers: &KnownServers, elide_segments: bool) -> Self {
        let (client, role_inferred) = match released.client {
            Some(client) => (client, false),
            None => released.conn.roles(known_servers),
        };
        Finished {
            conn: released.conn,
            now_ns: released.now_ns,
            client,
            role_inferred,
            ended_by_reuse: released.ended_by_reuse,
            elide_segments,
        }
    }

    /// Builds the report (once: the connection's state is finished in place).
    pub fn report(&mut self, time_wait_secs: f64, buffers: Buffers) -> ConnectionReport {
        if self.ended_by_reuse.is_some() {
            self.conn.ended_by_reuse = self.ended_by_reuse;
        }
        report_with_roles(
            &mut self.conn,
            self.now_ns,
            time_wait_secs,
            (self.client, self.role_inferred),
            buffers,
            self.elide_segments,
        )
    }
}

/// The streaming core, usable without files (tests, fuzzing, benchmarks).
pub struct Analyzer {
    table: FlowTable,
    max_connections: usize,
    time_wait_secs: f64,
    last_ts_ns: i64,
    /// Connections the table handed over during one `push`, reused across packets.
    released: Vec<Released>,
    /// [`RecordSegments::ForDiagnosis`].
    elide_segments: bool,
}

impl Analyzer {
    pub fn new(opts: &AnalyzeOptions) -> Analyzer {
        Analyzer {
            table: FlowTable::new(FlowOptions {
                record: opts.record_segments.clone(),
                close_delay_ns: CLOSE_DELAY_NS,
                time_wait_ns: (opts.time_wait_secs * 1e9) as i64,
                max_live: opts.max_connections,
                find: opts.find.as_deref().map(FindText::from),
            }),
            max_connections: opts.max_connections.max(1),
            time_wait_secs: opts.time_wait_secs,
            last_ts_ns: i64::MIN,
            released: Vec::new(),
            elide_segments: opts.record_segments == RecordSegments::ForDiagnosis,
        }
    }

    fn table_now(&self) -> i64 {
        self.last_ts_ns
    }

    /// Connections tracked right now (at most `max_connections`).
    pub fn live_connections(&self) -> usize {
        self.table.live_connections()
    }

    /// Connections evicted so far because more than `max_connections` were live.
    pub fn evictions(&self) -> &Evictions {
        self.table.evictions()
    }

    /// The capture warning for evictions, if there were any.
    pub fn eviction_warning(&self) -> Option<String> {
        let ev = self.table.evictions();
        if ev.count == 0 {
            return None;
        }
        let ids: Vec<String> = ev.first_ids.iter().map(u64::to_string).collect();
        let more = if ev.count > ev.first_ids.len() as u64 {
            ", …"
        } else {
            ""
        };
        let frame = ev.first_at.map_or(0, |(_, f)| f);
        Some(format!(
            "more than {} connections open at once (a SYN flood or a scan?): evicted the {} least \
             recently active, first at frame {frame}; they are reported as they stood when \
             evicted (ids {}{more}) and a later packet of theirs starts a new connection; \
             raise --max-connections to track more",
            self.max_connections,
            ev.count,
            ids.join(", ")
        ))
    }

    /// Feeds a segment without its payload bytes (the connection's HTTP and `--find`
    /// see them as missing).
    pub fn push(
        &mut self,
        seg: &crate::segment::Segment,
        on_connection: &mut dyn FnMut(ConnectionReport),
    ) {
        self.push_with_payload(seg, &[], on_connection);
    }

    /// Feeds a segment with its captured payload bytes.
    pub fn push_with_payload(
        &mut self,
        seg: &Segment,
        payload: &[u8],
        on_connection: &mut dyn FnMut(ConnectionReport),
    ) {
        let tw = self.time_wait_secs;
        self.push_finished(seg, payload, &mut |mut f| {
            on_connection(f.report(tw, Buffers::Move))
        });
    }

    /// [`Analyzer::push_with_payload`], handing over finished connections before their
    /// report is built.
    pub fn push_finished(
        &mut self,
        seg: &Segment,
        payload: &[u8],
        on_finished: &mut dyn FnMut(Finished),
    ) {
        let lookup = self.table.look_up(seg);
        self.push_looked_up(seg, payload, lookup, on_finished);
    }

    /// [`Analyzer::push_finished`] with the segment's table lookup done ahead.
    fn push_looked_up(
        &mut self,
        seg: &Segment,
        payload: &[u8],
        lookup: Lookup,
        on_finished: &mut dyn FnMut(Finished),
    ) {
        self.last_ts_ns = self.last_ts_ns.max(seg.ts_ns);
        let table = &mut self.table;
        let released = &mut self.released;
        table.push_looked_up(seg, payload, lookup, &mut |r| released.push(r));
        // Most packets release nothing: skip the drain and its drop.
        if !released.is_empty() {
            for r in released.drain(..) {
                on_finished(Finished::new(r, &table.known_servers, self.elide_segments));
            }
        }
    }

    /// Reports every connection still open, with `capture_end_ns` as the end of the
    /// capture.
    pub fn finish(
        self,
        capture_end_ns: i64,
        on_connection: &mut dyn FnMut(ConnectionReport),
    ) -> PostCloseStats {
        let tw = self.time_wait_secs;
        self.finish_finished(capture_end_ns, &mut |mut f| {
            on_connection(f.report(tw, Buffers::Move))
        })
    }

    /// [`Analyzer::finish`], handing over connections before their report is built;
    /// returns the post-close traffic found.
    pub fn finish_finished(
        self,
        capture_end_ns: i64,
        on_finished: &mut dyn FnMut(Finished),
    ) -> PostCloseStats {
        let known = self.table.known_servers.clone();
        let end = capture_end_ns.max(self.last_ts_ns);
        let elide = self.elide_segments;
        self.table.finish(&mut |mut r| {
            r.now_ns = end;
            on_finished(Finished::new(r, &known, elide))
        })
    }
}

/// Builds the report of one connection, as of capture time `now_ns`.
pub fn report(
    mut conn: Box<Connection>,
    now_ns: i64,
    time_wait_secs: f64,
    known_servers: &KnownServers,
) -> ConnectionReport {
    let roles = conn.roles(known_servers);
    report_with_roles(
        &mut conn,
        now_ns,
        time_wait_secs,
        roles,
        Buffers::Move,
        false,
    )
}

/// [`report`] with the roles decided: (index of the client, whether that was inferred).
fn report_with_roles(
    conn: &mut Connection,
    now_ns: i64,
    time_wait_secs: f64,
    (client, role_inferred): (usize, bool),
    buffers: Buffers,
    elide_segments: bool,
) -> ConnectionReport {
    conn.conv.finish(now_ns, time_wait_secs);
    conn.streams.end();
    if let Some((ts, frame)) = conn.ended_by_reuse {
        // Linux accepts a new SYN on a 4-tuple in TIME-WAIT (tcp_timewait_state_process)
        // and the old incarnation is gone.
        for end in &mut conn.conv.ends {
            end.apply(Event::NewSynInTimeWait, ts, Some(frame));
        }
    }
    let client = End::of_index(client);
    let roles = Roles { client };
    let server = client.other();
    let close = classify(&conn.conv, roles, now_ns);
    let conv = &conn.conv;
    let per_side = |f: &dyn Fn(End) -> u64| PerSide {
        client: f(client),
        server: f(server),
    };
    let mut tcp = PerSide {
        client: conv.dirs[client].stats.clone(),
        server: conv.dirs[server].stats.clone(),
    };
    tcp.client.missing_bytes = conv.dirs[client].missing_bytes();
    tcp.server.missing_bytes = conv.dirs[server].missing_bytes();

    let keepalives = PerSide {
        client: tcp.client.keepalives,
        server: tcp.server.keepalives,
    };
    let elided = elide_segments && !diagnosis_reads_segments(close.kind, keepalives);
    let segments = conv.recorded.as_ref().map(|recs| {
        if elided {
            return Vec::new();
        }
        recs.iter()
            .map(|r| {
                let to = r.from.other();
                let from_base = conv.dirs[r.from].base;
                let to_base = conv.dirs[to].base;
                SegmentRecord {
                    frame: r.at.frame(),
                    ts: secs(r.at.ts_ns),
                    from: roles.side_of(r.from),
                    flags: r.flags.wireshark_label(),
                    seq: r.seq.wrapping_sub(from_base),
                    ack: if r.flags.ack() && conv.dirs[to].seen {
                        Some(r.ack.wrapping_sub(to_base))
                    } else {
                        None
                    },
                    abs_seq: r.seq,
                    abs_ack: r.ack,
                    len: r.len,
                    window: r.window,
                    notes: r.notes.to_vec(),
                    client_state: r.states[client],
                    server_state: r.states[server],
                }
            })
            .collect()
    });

    let start = secs(conv.first.ts_ns);
    let end = secs(conv.last.ts_ns);
    let duration = (conv.last.ts_ns - conv.first.ts_ns) as f64 / 1e9;
    let (first_frame, last_frame) = (conv.first.frame(), conv.last.frame());
    let packets = per_side(&|i| conv.dirs[i].packets);
    let bytes = per_side(&|i| conv.dirs[i].bytes);
    let (client_state, server_state) = (conv.ends[client].state, conv.ends[server].state);
    let mut report = ConnectionReport {
        id: conn.id,
        client: conn.addrs[client],
        server: conn.addrs[server],
        role_inferred,
        start,
        end,
        duration,
        first_frame,
        last_frame,
        packets,
        bytes,
        close,
        client_state,
        server_state,
        // The model's timelines, in seconds, made from the machine's nanoseconds here.
        timeline: PerSide {
            client: conv.ends[client].timeline(),
            server: conv.ends[server].timeline(),
        },
        tcp,
        zeek: {
            let orig_is_client = conn.zeek_orig() == client.index();
            conn.zeek
                .log_view(orig_is_client, matches!(buffers, Buffers::Move))
        },
        http: conn
            .streams
            .http(matches!(buffers, Buffers::Move))
            .map(|mut http| {
                // Marks label the ladder's arrows: they go where the segments go.
                if elided {
                    http.marks = Vec::new();
                }
                http
            }),
        found: conn.streams.found(),
        segments,
    };
    report.close.http = report
        .http
        .as_deref()
        .and_then(|http| crate::http_close::judge(&report.close, http))
        .map(Box::new);
    report.close.captured_one_way = report.captured_one_way();
    report
}
