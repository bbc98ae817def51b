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

use crate::model::{PostCloseStats, SegmentNote};
use crate::segment::Segment;
use crate::state::TcpState;
use crate::tcp::{Conversation, End};
use crate::zeek::ZeekTracker;
use std::collections::BTreeSet;
use std::hash::BuildHasher;

mod after_close;
mod index;
pub mod streams;
use after_close::RecentlyClosed;
pub use index::FlowIndex;
use index::{prefetch_read, prefetch_read_bytes, prefetch_write_bytes};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
pub use streams::{FindText, Streams};

/// The two endpoints of a 4-tuple as five machine words, in a canonical order so that
/// both directions find the same entry. Comparing and hashing it costs a few word
/// operations, where a pair of `SocketAddr`s costs a branchy enum comparison per field.
#[derive(Clone, Copy, Debug, Eq)]
pub struct FlowKey([u64; 5]);

/// Word by word (comparing the arrays calls `memcmp`).
impl PartialEq for FlowKey {
    #[inline]
    fn eq(&self, other: &FlowKey) -> bool {
        let (a, b) = (&self.0, &other.0);
        (a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4]) == 0
    }
}

/// One endpoint as (family, high address word, low address word, port); IPv4 addresses
/// sit in the low word.
fn endpoint_words(a: &SocketAddr) -> (u64, u64, u64, u64) {
    match a {
        SocketAddr::V4(v4) => (4, 0, u64::from(u32::from(*v4.ip())), u64::from(v4.port())),
        SocketAddr::V6(v6) => {
            let bits = u128::from(*v6.ip());
            (6, (bits >> 64) as u64, bits as u64, u64::from(v6.port()))
        }
    }
}

/// Equal keys hash equally: the words are fed as they are, the address high words (zero
/// for IPv4) only when one is set.
impl std::hash::Hash for FlowKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let [a_hi, a_lo, b_hi, b_lo, rest] = self.0;
        state.write_u64(a_lo);
        state.write_u64(b_lo);
        state.write_u64(rest);
        if a_hi | b_hi != 0 {
            state.write_u64(a_hi);
            state.write_u64(b_hi);
        }
    }
}

impl FlowKey {
    pub fn of(seg: &Segment) -> FlowKey {
        FlowKey::of_sender(seg).0
    }

    /// The key of a segment's 4-tuple, and whether its source is the key's lower
    /// endpoint (the first in the canonical order).
    pub fn of_sender(seg: &Segment) -> (FlowKey, bool) {
        FlowKey::ordered(&seg.src, &seg.dst)
    }

    /// The key of the 4-tuple `a`–`b`, the same either way round.
    pub fn between(a: &SocketAddr, b: &SocketAddr) -> FlowKey {
        FlowKey::ordered(a, b).0
    }

    /// The key, and whether `src` is its lower endpoint.
    fn ordered(src: &SocketAddr, dst: &SocketAddr) -> (FlowKey, bool) {
        let a = endpoint_words(src);
        let b = endpoint_words(dst);
        let src_is_low = a <= b;
        let (lo, hi) = if src_is_low { (a, b) } else { (b, a) };
        let key = FlowKey([
            lo.1,
            lo.2,
            hi.1,
            hi.2,
            lo.3 << 48 | hi.3 << 32 | lo.0 << 8 | hi.0,
        ]);
        (key, src_is_low)
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
    /// What its bytes say (HTTP/1.x, `--find`), for the connections that need it.
    pub streams: Streams,
}

impl Connection {
    fn new(id: u64, seg: &Segment, record: bool, find: Option<&FindText>) -> Connection {
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
            streams: Streams::new(find),
        }
    }

    /// Feeds a segment sent by endpoint `from` (0: the first segment's sender), with its
    /// captured payload bytes (empty when the caller has none).
    fn process(&mut self, seg: &Segment, payload: &[u8], from: usize) {
        if seg.flags.syn() && self.client.is_none() {
            self.client = Some(if seg.flags.ack() { 1 - from } else { from });
        }
        self.conv.process(seg, End::of_index(from));
        self.zeek.observe(seg, from == self.zeek_orig);
        if !matches!(self.streams, Streams::Ignored | Streams::Done { .. }) {
            self.streams.process(seg, payload, from, &self.conv);
        }
    }

    /// Capture time (ns) from which the connection can be handed over, if it is finished.
    fn release_at(&self, close_delay_ns: i64, time_wait_ns: i64) -> Option<i64> {
        self.conv
            .is_finished()
            .then(|| self.finished_release_at(close_delay_ns, time_wait_ns))
    }

    /// [`Connection::release_at`] of a connection known to be finished.
    fn finished_release_at(&self, close_delay_ns: i64, time_wait_ns: i64) -> i64 {
        let quiet = self.conv.last.ts_ns.saturating_add(close_delay_ns);
        let tw_end = self
            .conv
            .ends
            .iter()
            .filter_map(|e| e.time_wait_since_ns())
            .map(|since| since.saturating_add(time_wait_ns))
            .max()
            .unwrap_or(i64::MIN);
        quiet.max(tw_end)
    }

    /// The endpoint index of Zeek's originator (of the connection's first conn.log row).
    pub fn zeek_orig(&self) -> usize {
        self.zeek_orig
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

/// Which connections keep a record of every segment (for diagrams and the findings that
/// read segments): none, all, or those with these ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordSegments {
    None,
    All,
    Ids(BTreeSet<u64>),
    /// Every connection is recorded, but its report carries the records only where
    /// `closewait diagnose` reads them ([`crate::analyze::diagnosis_reads_segments`]);
    /// elsewhere `segments` is `Some` and empty: recorded, so the connection can be a
    /// finding's drawn example, which a second pass over the capture records for drawing.
    /// Building the records of every connection (a label and a vector per segment) cost as
    /// much as the rest of the report.
    ForDiagnosis,
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
    /// `--find`: every connection's bytes are searched for this text.
    pub find: Option<FindText>,
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

/// What the table knows of a connection without touching it, in one cache line: its
/// 4-tuple, its id, and what deciding about a new SYN on the 4-tuple needs. A connection
/// parked in TIME-WAIT is cold by the time its port is reused; this line is all the SYN
/// that reuses it has to fetch. Refreshed after every packet of the connection.
#[derive(Clone, Copy, Debug)]
#[repr(align(64))]
struct Header {
    key: FlowKey,
    id: u64,
    /// Each endpoint's ISN, where `flags` says it sent a SYN.
    isn: [u32; 2],
    flags: u16,
}

/// Bits of [`Header::flags`]. Endpoint indexes are the connection's (0: first sender).
mod bit {
    pub const OCCUPIED: u16 = 1;
    /// Endpoint 0 is the key's lower endpoint.
    pub const FIRST_IS_LOW: u16 = 1 << 1;
    pub const SEEN: [u16; 2] = [1 << 2, 1 << 3];
    pub const ISN: [u16; 2] = [1 << 4, 1 << 5];
    pub const FINISHED: u16 = 1 << 6;
    /// An endpoint is in TIME-WAIT.
    pub const TIME_WAIT: u16 = 1 << 7;
    pub const CLIENT_KNOWN: u16 = 1 << 8;
    /// The client is endpoint 1 (with `CLIENT_KNOWN`).
    pub const CLIENT_1: u16 = 1 << 9;
    /// Its bytes are still being read ([`super::Streams::is_reading`]): the hand-over
    /// must end them. Most connections finished reading at their last FIN, and the
    /// hand-over then does not touch their (cold) stream state at all.
    pub const READING: u16 = 1 << 10;
}

impl Header {
    const EMPTY: Header = Header {
        key: FlowKey([0; 5]),
        id: 0,
        isn: [0; 2],
        flags: 0,
    };

    fn has(&self, bit: u16) -> bool {
        self.flags & bit != 0
    }

    fn holds(&self, id: u64) -> bool {
        self.has(bit::OCCUPIED) && self.id == id
    }

    /// The header of `conn`, whose 4-tuple is `key` (`first_is_low`: the connection's
    /// endpoint 0 is the key's lower endpoint).
    fn of(conn: &Connection, key: FlowKey, first_is_low: bool) -> Header {
        let conv = &conn.conv;
        let mut flags = bit::OCCUPIED;
        let mut isn = [0; 2];
        if first_is_low {
            flags |= bit::FIRST_IS_LOW;
        }
        for (i, dir) in conv.dirs.iter().enumerate() {
            if dir.seen {
                flags |= bit::SEEN[i];
            }
            if let Some(n) = dir.isn {
                flags |= bit::ISN[i];
                isn[i] = n;
            }
        }
        if conv.is_finished() {
            flags |= bit::FINISHED;
        }
        if conv.ends.iter().any(|e| e.state == TcpState::TimeWait) {
            flags |= bit::TIME_WAIT;
        }
        match conn.client {
            Some(1) => flags |= bit::CLIENT_KNOWN | bit::CLIENT_1,
            Some(_) => flags |= bit::CLIENT_KNOWN,
            None => {}
        }
        if conn.streams.is_reading() {
            flags |= bit::READING;
        }
        Header {
            key,
            id: conn.id,
            isn,
            flags,
        }
    }

    /// The index (0 or 1) of the sender of a segment of this 4-tuple.
    fn sender(&self, lookup: &Lookup) -> usize {
        usize::from(lookup.src_is_low != self.has(bit::FIRST_IS_LOW))
    }

    /// Is a SYN from `seg`, sent by endpoint `from`, the start of a new connection on
    /// this 4-tuple?
    fn is_new_incarnation(&self, seg: &Segment, from: usize) -> bool {
        if !seg.flags.syn() || seg.flags.ack() {
            return false;
        }
        if self.has(bit::ISN[from]) {
            // A retransmitted SYN carries the same ISN.
            self.isn[from] != seg.seq
        } else {
            // This side never sent a SYN in this connection: a SYN now is a new one
            // (unless the connection only just started with data from the other side).
            self.has(bit::SEEN[from]) || self.has(bit::FINISHED)
        }
    }

    /// The client's index, when a SYN told.
    fn client(&self) -> Option<usize> {
        self.has(bit::CLIENT_KNOWN)
            .then(|| usize::from(self.has(bit::CLIENT_1)))
    }
}

/// A connection handed over by the table.
pub struct Released {
    pub conn: Box<Connection>,
    /// Capture time (ns) of the hand-over.
    pub now_ns: i64,
    /// The client's index, when a SYN told (known without touching the connection).
    pub client: Option<usize>,
    /// Capture time and frame of the SYN that reused the 4-tuple while an endpoint was
    /// in TIME-WAIT (Linux accepts it, and the old incarnation is gone): for whoever
    /// reads the connection next to set on it.
    pub ended_by_reuse: Option<(i64, u64)>,
}

/// Boxes of reported connections kept for reuse: enough for a few batches coming back
/// from the output thread.
const MAX_SPARE_BOXES: usize = 1024;

/// All connections alive at the current point of the capture.
///
/// Connections live boxed in numbered slots; the [`FlowIndex`] maps a 4-tuple's hash to
/// a slot, and the release and staleness queues name connections by (slot, id), so that
/// only a packet's own lookup ever hashes. Boxes of reported connections come back
/// ([`FlowTable::recycle`]) and hold new connections: no allocation per connection.
pub struct FlowTable {
    /// The live connections' headers, by slot; slots not `OCCUPIED` are listed in
    /// `free_slots`.
    headers: Vec<Header>,
    /// The connections themselves, by slot.
    slots: Vec<Option<Box<Connection>>>,
    free_slots: Vec<u32>,
    index: FlowIndex,
    hasher: FlowHasher,
    /// Boxed on purpose: each is handed out as the box of a new connection.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<Connection>>,
    next_id: u64,
    /// Finished connections waiting to be handed over: (release time, slot, id).
    releases: VecDeque<(i64, u32, u64)>,
    opts: FlowOptions,
    /// Endpoints seen answering SYNs, with how many connections they accepted.
    pub known_servers: KnownServers,
    now_ns: i64,
    /// Live connections, roughly least recently active first: (last activity seen when
    /// queued, slot, id). A CLOCK-style second chance: an entry popped for eviction whose
    /// connection was active since it was queued goes to the back instead. Entries of
    /// connections already gone are dropped when met, or in a sweep when they pile up.
    staleness: VecDeque<(i64, u32, u64)>,
    evictions: Evictions,
    /// Connections reported after they finished, for their stray segments.
    recent: RecentlyClosed,
}

/// A segment's 4-tuple, its hash, and the slot its connection was in when looked up
/// ahead (checked again before use: the table may have changed since).
#[derive(Clone, Copy, Debug)]
pub struct Lookup {
    key: FlowKey,
    hash: u64,
    /// The segment's source is the key's lower endpoint.
    src_is_low: bool,
    slot: Option<u32>,
}

impl Lookup {
    /// A lookup of no segment, to fill buffers with before real ones are written.
    pub fn placeholder() -> Lookup {
        Lookup {
            key: FlowKey([0; 5]),
            hash: 0,
            src_is_low: false,
            slot: None,
        }
    }
}

impl FlowTable {
    pub fn new(mut opts: FlowOptions) -> FlowTable {
        // Slots are numbered with `u32`s (and far fewer fit in memory anyway).
        opts.max_live = opts.max_live.clamp(1, u32::MAX as usize - 1);
        let hasher = FlowHasher::default();
        FlowTable {
            recent: RecentlyClosed::new(opts.time_wait_ns, hasher),
            headers: Vec::new(),
            slots: Vec::new(),
            free_slots: Vec::new(),
            index: FlowIndex::new(),
            hasher,
            spare: Vec::new(),
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
        self.index.len()
    }

    /// Connections evicted so far because the table was full.
    pub fn evictions(&self) -> &Evictions {
        &self.evictions
    }

    /// Takes back the box of a reported connection, to hold a new one.
    pub fn recycle(&mut self, conn: Box<Connection>) {
        if self.spare.len() < MAX_SPARE_BOXES {
            self.spare.push(conn);
        }
    }

    /// Whether [`FlowTable::recycle`] would keep a box now.
    pub fn wants_boxes(&self) -> bool {
        self.spare.len() < MAX_SPARE_BOXES / 2
    }

    /// The key and hash of a segment's 4-tuple, with the cache line where its lookup
    /// starts fetched: best called a few packets ahead of [`FlowTable::push_looked_up`].
    #[inline]
    pub fn look_up(&self, seg: &Segment) -> Lookup {
        let (key, src_is_low) = FlowKey::of_sender(seg);
        let hash = self.hasher.hash_one(key);
        self.index.prefetch(hash);
        Lookup {
            key,
            hash,
            src_is_low,
            slot: None,
        }
    }

    /// Fetches the header of the connection a lookup will most likely find (the first
    /// slot filed under its hash tag; the index line should be fetched already, see
    /// [`FlowTable::look_up`]) and keeps that slot in the lookup, to be confirmed when the
    /// packet is analysed. The connection itself is not fetched: a live one is in the
    /// caches already, and a SYN reusing the 4-tuple of a parked one needs only its
    /// header.
    #[inline]
    pub fn prefetch_header(&self, lookup: &mut Lookup) {
        lookup.slot = self.index.find(lookup.hash, |_| true);
        if let Some(slot) = lookup.slot {
            prefetch_read(self.headers.as_ptr().wrapping_add(slot as usize));
        }
    }

    /// Whether `slot` holds the connection of `lookup`'s 4-tuple.
    #[inline]
    fn holds(&self, slot: u32, lookup: &Lookup) -> bool {
        let h = &self.headers[slot as usize];
        h.has(bit::OCCUPIED) && h.key == lookup.key
    }

    #[inline]
    fn find(&self, lookup: &Lookup) -> Option<u32> {
        self.index
            .find(lookup.hash, |slot| self.holds(slot, lookup))
    }

    /// Feeds one segment, whose lookup [`FlowTable::look_up`] did (a few packets ahead,
    /// or just now); finished connections are passed to `emit`.
    pub fn push_looked_up(
        &mut self,
        seg: &Segment,
        payload: &[u8],
        lookup: Lookup,
        emit: &mut dyn FnMut(Released),
    ) {
        self.now_ns = self.now_ns.max(seg.ts_ns);
        self.release_due(emit);
        // One lookup per packet (none when the one done ahead still holds): process in
        // place unless a new SYN starts a new incarnation of the 4-tuple.
        let found = match lookup.slot {
            Some(slot) if self.holds(slot, &lookup) => Some(slot),
            _ => self.find(&lookup),
        };
        let Some(slot) = found else {
            // A stray segment of a connection reported after it finished is its post-close
            // traffic, not a new connection (only a SYN opens one). A SYN does not look:
            // the connection it opens takes the 4-tuple's later segments.
            if !seg.flags.syn() && !self.recent.is_empty() && self.recent.absorb(lookup.key, seg) {
                return;
            }
            self.make_room(seg, emit);
            let conn = self.open(seg);
            self.insert(lookup, conn, seg, payload);
            return;
        };
        let header = self.headers[slot as usize];
        let from = header.sender(&lookup);
        if header.is_new_incarnation(seg, from) {
            let mut released = self.take(slot, seg.ts_ns);
            released.ended_by_reuse = header.has(bit::TIME_WAIT).then_some((seg.ts_ns, seg.frame));
            emit(released);
            let mut conn = self.open(seg);
            conn.reused_ports = true;
            self.insert(lookup, conn, seg, payload);
            return;
        }
        let conn = self.slots[slot as usize].as_mut().expect("occupied slot");
        conn.process(seg, payload, from);
        let updated = Header::of(conn, lookup.key, header.has(bit::FIRST_IS_LOW));
        if updated.has(bit::FINISHED) && !header.has(bit::FINISHED) {
            let at = conn.finished_release_at(self.opts.close_delay_ns, self.opts.time_wait_ns);
            self.releases.push_back((at, slot, conn.id));
        }
        self.headers[slot as usize] = updated;
        self.note_server(seg);
    }

    /// The live connection in `slot` with this id, if it is still there.
    fn live(&self, slot: u32, id: u64) -> Option<&Connection> {
        if self.headers[slot as usize].holds(id) {
            self.slots[slot as usize].as_deref()
        } else {
            None
        }
    }

    /// Removes the connection in `slot` from the table, as released at `now_ns`.
    fn take(&mut self, slot: u32, now_ns: i64) -> Released {
        let header = std::mem::replace(&mut self.headers[slot as usize], Header::EMPTY);
        let mut conn = self.slots[slot as usize].take().expect("live slot");
        // Its bytes end here, on the thread that allocated their state.
        if header.has(bit::READING) {
            conn.streams.end();
        }
        self.index.remove(self.hasher.hash_one(header.key), slot);
        self.free_slots.push(slot);
        Released {
            conn,
            now_ns,
            client: header.client(),
            ended_by_reuse: None,
        }
    }

    /// At the cap, evicts the stalest connection so a new one fits.
    fn make_room(&mut self, seg: &Segment, emit: &mut dyn FnMut(Released)) {
        let cap = self.opts.max_live;
        while self.index.len() >= cap {
            let Some((queued_at, slot, id)) = self.staleness.pop_front() else {
                // Cannot happen (every live connection is queued); never loop forever.
                break;
            };
            let last = match self.live(slot, id) {
                Some(conn) => conn.conv.last.ts_ns,
                None => continue, // already handed over
            };
            if last > queued_at {
                // Active since it was queued: a second chance, at the back.
                self.staleness.push_back((last, slot, id));
                continue;
            }
            let released = self.take(slot, self.now_ns);
            let ev = &mut self.evictions;
            ev.count += 1;
            if ev.first_ids.len() < EVICTED_IDS_KEPT {
                ev.first_ids.push(id);
            }
            ev.first_at.get_or_insert((seg.ts_ns, seg.frame));
            emit(released);
        }
    }

    /// A new connection starting with `seg` (not yet processed), in a spare box if
    /// there is one.
    fn open(&mut self, seg: &Segment) -> Box<Connection> {
        let id = self.next_id;
        self.next_id += 1;
        let record = match &self.opts.record {
            RecordSegments::None => false,
            RecordSegments::All | RecordSegments::ForDiagnosis => true,
            RecordSegments::Ids(ids) => ids.contains(&id),
        };
        match self.spare.pop() {
            Some(mut boxed) => {
                // The spare box after next holds a new connection a few packets from
                // now: fetch it while it is not needed (it was last touched by the
                // thread that reported its connection). The next one's lines were
                // fetched so when it was the one after next: what its old connection
                // frees (the HTTP conversation's box) can be fetched now.
                let count = self.spare.len();
                if let Some(after_next) = count.checked_sub(2).map(|i| &self.spare[i]) {
                    let p: *const Connection = &**after_next;
                    prefetch_write_bytes(p.cast(), std::mem::size_of::<Connection>());
                }
                if let Some(next) = self.spare.last() {
                    next.streams.prefetch_http();
                }
                *boxed = Connection::new(id, seg, record, self.opts.find.as_ref());
                boxed
            }
            None => Box::new(Connection::new(id, seg, record, self.opts.find.as_ref())),
        }
    }

    fn insert(&mut self, lookup: Lookup, mut conn: Box<Connection>, seg: &Segment, payload: &[u8]) {
        // The first segment's sender is endpoint 0.
        conn.process(seg, payload, 0);
        let header = Header::of(&conn, lookup.key, lookup.src_is_low);
        if conn.reused_ports {
            if let Some(rec) = conn.conv.recorded.as_mut().and_then(|r| r.last_mut()) {
                rec.notes.insert(SegmentNote::ReusedPorts);
            }
        }
        let release = conn.release_at(self.opts.close_delay_ns, self.opts.time_wait_ns);
        let id = conn.id;
        let last = conn.conv.last.ts_ns;
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.headers[slot as usize] = header;
                self.slots[slot as usize] = Some(conn);
                slot
            }
            None => {
                self.headers.push(header);
                self.slots.push(Some(conn));
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(lookup.hash, slot);
        self.staleness.push_back((last, slot, id));
        self.note_server(seg);
        if let Some(at) = release {
            self.releases.push_back((at, slot, id));
        }
        // Entries of connections handed over stay until met; sweep them when they
        // outnumber the live connections (amortised O(1) per connection).
        if self.staleness.len() > 2 * self.index.len() + 1024 {
            let headers = &self.headers;
            self.staleness
                .retain(|&(_, slot, id)| headers[slot as usize].holds(id));
        }
    }

    /// A SYN,ACK marks its sender as a server, for inferring roles elsewhere.
    #[inline]
    fn note_server(&mut self, seg: &Segment) {
        if seg.flags.syn() && seg.flags.ack() {
            if let Some(n) = self.known_servers.get_mut(&seg.src) {
                *n += 1;
            } else if self.known_servers.len() < MAX_KNOWN_SERVERS {
                self.known_servers.insert(seg.src, 1);
            }
        }
    }

    fn release_due(&mut self, emit: &mut dyn FnMut(Released)) {
        while let Some(&(at, slot, id)) = self.releases.front() {
            if at > self.now_ns {
                // Release times are pushed in capture order, which is time order but for
                // the odd timestamp going backwards; a late entry only waits longer.
                break;
            }
            self.releases.pop_front();
            let due = match self.live(slot, id) {
                Some(conn) => {
                    match conn.release_at(self.opts.close_delay_ns, self.opts.time_wait_ns) {
                        Some(t) if t <= self.now_ns => true,
                        Some(t) => {
                            self.releases.push_back((t, slot, id));
                            false
                        }
                        None => false,
                    }
                }
                None => false,
            };
            if due {
                let key = self.headers[slot as usize].key;
                let (addrs, client) = match self.live(slot, id) {
                    Some(conn) => (conn.addrs, conn.roles(&self.known_servers).0),
                    None => continue,
                };
                let released = self.take(slot, self.now_ns);
                emit(released);
                let now = self.now_ns;
                self.recent
                    .remember(key, id, addrs[client], addrs[1 - client], now);
            }
        }
    }

    /// Hands over every connection still in the table, in id order, and returns the
    /// post-close traffic found.
    pub fn finish(mut self, emit: &mut dyn FnMut(Released)) -> PostCloseStats {
        let now = self.now_ns;
        let mut order: Vec<(u64, u32)> = self
            .headers
            .iter()
            .enumerate()
            .filter(|(_, h)| h.has(bit::OCCUPIED))
            .map(|(slot, h)| (h.id, slot as u32))
            .collect();
        order.sort_unstable_by_key(|&(id, _)| id);
        for (_, slot) in order {
            let released = self.take(slot, now);
            emit(released);
        }
        self.recent.finish()
    }
}

/// Asks the CPU to fetch all of a connection's cache lines (about 25): building its
/// report touches most of them, and a connection reported from another thread, or
/// parked in TIME-WAIT for seconds, is in no cache of this core.
#[inline]
pub fn prefetch_connection(conn: &Connection) {
    let p: *const Connection = conn;
    prefetch_read_bytes(p.cast(), std::mem::size_of::<Connection>());
}
