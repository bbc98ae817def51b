//! The connection table: which segments belong to which connection, and who is the client.
//!
//! A connection is one lifetime of a 4-tuple. A SYN with a new initial sequence number on
//! a 4-tuple starts a new connection (as Linux port reuse does, and as Wireshark's
//! `tcp.analysis.reused_ports` marks it); a retransmitted SYN (same ISN) does not.
//!
//! Memory is bounded by the connections alive at a time: a connection is handed to the
//! caller once it is finished (both endpoints CLOSED or in TIME-WAIT) and quiet for a while,
//! and once its TIME-WAIT has run out, so that stray retransmissions still land in it.
//! A SYN flood or a port scan never finishes its connections, so the live ones are also
//! capped ([`FlowOptions::max_live`]): at the cap, the stalest connection (least recently
//! active) is evicted, handed over as it stands, and counted ([`Evictions`]).
//!
//! Roles: the sender of a SYN without ACK is the client. Without one (the capture started
//! mid-connection), the server is inferred the way an engineer reading netstat would: an
//! endpoint already seen accepting connections, else the well-known port, else the
//! non-ephemeral port, else the lower port.

use crate::analyze::RecordSegments;
use crate::model::SegmentNote;
use crate::segment::Segment;
use crate::state::TcpState;
use crate::tcp::Conversation;
use crate::zeek::ZeekTracker;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

/// The two endpoints of a 4-tuple, in a canonical order so both directions find the same
/// entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowKey(SocketAddr, SocketAddr);

/// Hashes the addresses and ports as a few machine words (std's `SocketAddr` hash feeds
/// the hasher field by field, which costs more than the table lookup it serves). Equal keys
/// hash equally: only fields that `Eq` compares are fed.
impl std::hash::Hash for FlowKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        fn word(a: &SocketAddr) -> (u64, u64) {
            match a {
                SocketAddr::V4(v4) => (
                    u64::from(u32::from(*v4.ip())) << 16 | u64::from(v4.port()),
                    0,
                ),
                SocketAddr::V6(v6) => {
                    let bits = u128::from(*v6.ip());
                    ((bits >> 64) as u64 ^ u64::from(v6.port()), bits as u64)
                }
            }
        }
        let (a0, a1) = word(&self.0);
        let (b0, b1) = word(&self.1);
        state.write_u64(a0);
        state.write_u64(b0);
        if a1 | b1 != 0 {
            state.write_u64(a1);
            state.write_u64(b1);
        }
    }
}

impl FlowKey {
    pub fn of(seg: &Segment) -> FlowKey {
        if seg.src <= seg.dst {
            FlowKey(seg.src, seg.dst)
        } else {
            FlowKey(seg.dst, seg.src)
        }
    }
}

/// One connection being tracked.
#[derive(Clone, Debug)]
pub struct Connection {
    pub id: u64,
    /// Endpoint addresses, index 0 = the sender of the first captured segment (the same
    /// indexing as [`Conversation`]).
    pub addrs: [SocketAddr; 2],
    pub conv: Conversation,
    pub zeek: ZeekTracker,
    /// Index of Zeek's originator.
    zeek_orig: usize,
    /// Index of the client, when a SYN told.
    pub client: Option<usize>,
    /// This connection reused the 4-tuple of an earlier one.
    pub reused_ports: bool,
    /// When the first endpoint reached TIME-WAIT ended early because the 4-tuple was
    /// reused (Linux accepts a new SYN in TIME-WAIT).
    pub ended_by_reuse: Option<(i64, u64)>,
}

impl Connection {
    fn new(id: u64, seg: &Segment, record: bool) -> Connection {
        let flags = seg.flags;
        // Zeek's originator: the first packet's sender, flipped when that packet is a
        // SYN,ACK or (mid-stream) when it comes from a well-known port to a port that isn't.
        let flipped = if flags.syn() {
            flags.ack()
        } else {
            seg.src.port() < 1024 && seg.dst.port() >= 1024
        };
        let client = if flags.syn() {
            Some(if flags.ack() { 1 } else { 0 })
        } else {
            None
        };
        Connection {
            id,
            addrs: [seg.src, seg.dst],
            conv: Conversation::new(seg, record),
            zeek: ZeekTracker::new(flipped),
            zeek_orig: if flipped { 1 } else { 0 },
            client,
            reused_ports: false,
            ended_by_reuse: None,
        }
    }

    fn index_of(&self, seg: &Segment) -> usize {
        if seg.src == self.addrs[0] && seg.dst == self.addrs[1] {
            0
        } else {
            1
        }
    }

    fn process(&mut self, seg: &Segment) {
        let from = self.index_of(seg);
        if seg.flags.syn() && self.client.is_none() {
            self.client = Some(if seg.flags.ack() { 1 - from } else { from });
        }
        self.conv.process(seg, from);
        self.zeek.observe(seg, from == self.zeek_orig);
    }

    /// Capture time (ns) from which the connection can be handed over, if it is finished.
    fn release_at(&self, close_delay_ns: i64, time_wait_ns: i64) -> Option<i64> {
        if !self.conv.is_finished() {
            return None;
        }
        let quiet = self.conv.last.ts_ns.saturating_add(close_delay_ns);
        let tw_end = self
            .conv
            .ends
            .iter()
            .filter(|e| e.state == TcpState::TimeWait)
            .filter_map(|e| e.changes.last())
            .map(|c| ((c.at * 1e9).round() as i64).saturating_add(time_wait_ns))
            .max()
            .unwrap_or(i64::MIN);
        Some(quiet.max(tw_end))
    }

    /// Is a SYN from `seg` the start of a new connection on this 4-tuple?
    fn is_new_incarnation(&self, seg: &Segment) -> bool {
        if !seg.flags.syn() || seg.flags.ack() {
            return false;
        }
        let from = self.index_of(seg);
        match self.conv.dirs[from].isn {
            // A retransmitted SYN carries the same ISN.
            Some(isn) => isn != seg.seq,
            // This side never sent a SYN in this connection: a SYN now is a new one
            // (unless the connection only just started with data from the other side).
            None => self.conv.dirs[from].seen || self.conv.is_finished(),
        }
    }

    /// Which endpoint index is the client: known from a SYN, or inferred.
    pub fn roles(&self, known_servers: &KnownServers) -> (usize, bool) {
        match self.client {
            Some(c) => (c, false),
            None => (1 - infer_server(self.addrs, known_servers), true),
        }
    }
}

/// Index of the endpoint that is most likely the server, for connections seen without a
/// SYN.
pub fn infer_server(addrs: [SocketAddr; 2], known_servers: &KnownServers) -> usize {
    let known = |i: usize| known_servers.get(&addrs[i]).copied().unwrap_or(0);
    if known(0) != known(1) {
        return if known(0) > known(1) { 0 } else { 1 };
    }
    let port = |i: usize| addrs[i].port();
    let well_known = |i: usize| port(i) < 1024;
    if well_known(0) != well_known(1) {
        return if well_known(0) { 0 } else { 1 };
    }
    // Linux hands out ephemeral ports from 32768 (net.ipv4.ip_local_port_range), IANA
    // from 49152; service ports mostly sit below.
    let ephemeral = |i: usize| port(i) >= 32768;
    if ephemeral(0) != ephemeral(1) {
        return if ephemeral(0) { 1 } else { 0 };
    }
    if port(0) != port(1) {
        return if port(0) < port(1) { 0 } else { 1 };
    }
    1
}

/// Tunables of the table.
#[derive(Clone, Debug)]
pub struct FlowOptions {
    pub record: RecordSegments,
    /// How long a finished connection stays to absorb stray retransmissions.
    pub close_delay_ns: i64,
    pub time_wait_ns: i64,
    /// At most this many connections are tracked at once (at least 1); past it the
    /// stalest is evicted.
    pub max_live: usize,
}

/// The table's hasher: foldhash, several times faster than std's SipHash on 4-tuples
/// (a lookup per packet) and still seeded per process, so a crafted capture cannot aim
/// at its collisions.
type FlowHasher = foldhash::fast::RandomState;

/// Endpoints seen answering SYNs (sending SYN,ACK), with how many connections each
/// accepted: the evidence for inferring roles of connections seen without a SYN.
pub type KnownServers = HashMap<SocketAddr, u32, FlowHasher>;

/// Default cap on live connections: about 1.6 GB of tracking state at worst, far above what
/// a real capture holds open at once.
pub const DEFAULT_MAX_LIVE: usize = 1_000_000;

/// At most this many endpoints are remembered as servers (for role inference); a flood
/// of spoofed SYN,ACKs cannot grow the map past it.
const MAX_KNOWN_SERVERS: usize = 1_000_000;

/// Connections evicted because the table was full.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evictions {
    pub count: u64,
    /// Ids of the first few evicted connections, to name them in a warning.
    pub first_ids: Vec<u64>,
    /// Capture time (ns) and frame of the first eviction.
    pub first_at: Option<(i64, u64)>,
}

/// How many evicted ids [`Evictions::first_ids`] keeps.
const EVICTED_IDS_KEPT: usize = 5;

/// All connections alive at the current point of the capture.
pub struct FlowTable {
    /// Boxed: entries stay small, so probing touches few cache lines and inserting or
    /// removing a connection moves a pointer, not a kilobyte.
    conns: HashMap<FlowKey, Box<Connection>, FlowHasher>,
    next_id: u64,
    /// Finished connections waiting to be handed over: (release time, key, id).
    releases: VecDeque<(i64, FlowKey, u64)>,
    opts: FlowOptions,
    /// Endpoints seen answering SYNs, with how many connections they accepted.
    pub known_servers: KnownServers,
    now_ns: i64,
    /// Live connections, roughly least recently active first: (last activity seen when
    /// queued, key, id). A CLOCK-style second chance: an entry popped for eviction whose
    /// connection was active since it was queued goes to the back instead. Entries of
    /// connections already gone are dropped when met, or in a sweep when they pile up.
    staleness: VecDeque<(i64, FlowKey, u64)>,
    evictions: Evictions,
}

impl FlowTable {
    pub fn new(opts: FlowOptions) -> FlowTable {
        FlowTable {
            conns: HashMap::default(),
            next_id: 0,
            releases: VecDeque::new(),
            opts,
            known_servers: KnownServers::default(),
            now_ns: i64::MIN,
            staleness: VecDeque::new(),
            evictions: Evictions::default(),
        }
    }

    pub fn live_connections(&self) -> usize {
        self.conns.len()
    }

    /// Connections evicted so far because the table was full.
    pub fn evictions(&self) -> &Evictions {
        &self.evictions
    }

    /// Feeds one segment; finished connections are passed to `emit` with the time they
    /// were released at (still boxed: a connection is about a kilobyte, not worth moving).
    pub fn push(&mut self, seg: &Segment, emit: &mut dyn FnMut(Box<Connection>, i64)) {
        self.now_ns = self.now_ns.max(seg.ts_ns);
        self.release_due(emit);
        let key = FlowKey::of(seg);
        // One lookup per packet: process in place unless a new SYN starts a new
        // incarnation of the 4-tuple.
        match self.conns.get_mut(&key) {
            Some(conn) if !conn.is_new_incarnation(seg) => {
                let was_finished = conn.conv.is_finished();
                conn.process(seg);
                if !was_finished {
                    let release = conn.release_at(self.opts.close_delay_ns, self.opts.time_wait_ns);
                    if let Some(at) = release {
                        self.releases.push_back((at, key, conn.id));
                    }
                }
                self.note_server(seg);
            }
            Some(_) => {
                let mut old = self.conns.remove(&key).expect("present");
                if old.conv.ends.iter().any(|e| e.state == TcpState::TimeWait) {
                    old.ended_by_reuse = Some((seg.ts_ns, seg.frame));
                }
                emit(old, seg.ts_ns);
                let mut conn = self.open(seg);
                conn.reused_ports = true;
                self.insert(key, conn, seg);
            }
            None => {
                self.make_room(seg, emit);
                let conn = self.open(seg);
                self.insert(key, conn, seg);
            }
        }
    }

    /// At the cap, evicts the stalest connection so a new one fits.
    fn make_room(&mut self, seg: &Segment, emit: &mut dyn FnMut(Box<Connection>, i64)) {
        let cap = self.opts.max_live.max(1);
        while self.conns.len() >= cap {
            let Some((queued_at, key, id)) = self.staleness.pop_front() else {
                // Cannot happen (every live connection is queued); never loop forever.
                break;
            };
            let last = match self.conns.get(&key) {
                Some(conn) if conn.id == id => conn.conv.last.ts_ns,
                _ => continue, // already handed over
            };
            if last > queued_at {
                // Active since it was queued: a second chance, at the back.
                self.staleness.push_back((last, key, id));
                continue;
            }
            if let Some(conn) = self.conns.remove(&key) {
                let ev = &mut self.evictions;
                ev.count += 1;
                if ev.first_ids.len() < EVICTED_IDS_KEPT {
                    ev.first_ids.push(conn.id);
                }
                ev.first_at.get_or_insert((seg.ts_ns, seg.frame));
                emit(conn, self.now_ns);
            }
        }
    }

    fn open(&mut self, seg: &Segment) -> Connection {
        let id = self.next_id;
        self.next_id += 1;
        let record = match &self.opts.record {
            RecordSegments::None => false,
            RecordSegments::All => true,
            RecordSegments::Ids(ids) => ids.contains(&id),
        };
        Connection::new(id, seg, record)
    }

    fn insert(&mut self, key: FlowKey, mut conn: Connection, seg: &Segment) {
        conn.process(seg);
        if conn.reused_ports {
            if let Some(rec) = conn.conv.recorded.as_mut().and_then(|r| r.last_mut()) {
                rec.notes.insert(SegmentNote::ReusedPorts);
            }
        }
        let release = conn.release_at(self.opts.close_delay_ns, self.opts.time_wait_ns);
        let id = conn.id;
        self.staleness.push_back((conn.conv.last.ts_ns, key, id));
        self.conns.insert(key, Box::new(conn));
        self.note_server(seg);
        if let Some(at) = release {
            self.releases.push_back((at, key, id));
        }
        // Entries of connections handed over stay until met; sweep them when they
        // outnumber the live connections (amortised O(1) per connection).
        if self.staleness.len() > 2 * self.conns.len() + 1024 {
            let conns = &self.conns;
            self.staleness
                .retain(|(_, k, id)| conns.get(k).is_some_and(|c| c.id == *id));
        }
    }

    /// A SYN,ACK marks its sender as a server, for inferring roles elsewhere.
    fn note_server(&mut self, seg: &Segment) {
        if seg.flags.syn() && seg.flags.ack() {
            if let Some(n) = self.known_servers.get_mut(&seg.src) {
                *n += 1;
            } else if self.known_servers.len() < MAX_KNOWN_SERVERS {
                self.known_servers.insert(seg.src, 1);
            }
        }
    }

    fn release_due(&mut self, emit: &mut dyn FnMut(Box<Connection>, i64)) {
        while let Some(&(at, key, id)) = self.releases.front() {
            if at > self.now_ns {
                // Release times are pushed in capture order, which is time order but for
                // the odd timestamp going backwards; a late entry only waits longer.
                break;
            }
            self.releases.pop_front();
            let due = match self.conns.get(&key) {
                Some(conn) if conn.id == id => {
                    match conn.release_at(self.opts.close_delay_ns, self.opts.time_wait_ns) {
                        Some(t) if t <= self.now_ns => true,
                        Some(t) => {
                            self.releases.push_back((t, key, id));
                            false
                        }
                        None => false,
                    }
                }
                _ => false,
            };
            if due {
                if let Some(conn) = self.conns.remove(&key) {
                    emit(conn, self.now_ns);
                }
            }
        }
    }

    /// Hands over every connection still in the table, in id order.
    pub fn finish(mut self, emit: &mut dyn FnMut(Box<Connection>, i64)) {
        let now = self.now_ns;
        // Sort the (small) keys, not the (large) connections.
        let mut order: Vec<(u64, FlowKey)> = self.conns.iter().map(|(k, c)| (c.id, *k)).collect();
        order.sort_unstable_by_key(|&(id, _)| id);
        for (_, key) in order {
            if let Some(c) = self.conns.remove(&key) {
                emit(c, now);
            }
        }
    }
}
