//! A short memory of connections reported after they were reset or closed, so that a stray
//! segment on the same 4-tuple is recognised as that connection's post-close traffic.
//!
//! Why: the table hands a finished connection over a few seconds after its last packet
//! (see `analyze::CLOSE_DELAY_NS`) and forgets it. A segment that arrives later (a
//! retransmission the RST overtook, a scanner's data probe 15 s after its RST, the peer's
//! RST answering it) would otherwise open a new connection with guessed roles and be
//! reported as an "abort" that never was. Anything but a SYN on a remembered 4-tuple is
//! counted against the connection it belongs to ([`PostClose`]); a SYN starts a new
//! connection as always (RFC 9293 §3.10.7.1: a socket that is gone answers everything else
//! with a RST, so nothing but a SYN can open anything on that 4-tuple).
//!
//! Bounded: at most [`MAX_REMEMBERED`] 4-tuples, each for `keep_ns` after its connection was
//! reported (the TIME-WAIT length, 60 s by default); the oldest is forgotten first. The
//! memory is consulted only when a segment other than a SYN misses the connection table,
//! never on the common path.

use super::{FlowHasher, FlowKey};
use crate::model::{secs, PostClose, PostCloseStats as PostCloseLog, ZeekView};
use crate::segment::Segment;
use crate::zeek::ZeekTracker;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

/// 4-tuples remembered at most (about 100 bytes each).
pub const MAX_REMEMBERED: usize = 16_384;

/// Post-close records kept for the report at most; past it they are only counted.
pub const MAX_REPORTED: usize = 10_000;

/// A reported connection, as its stray segments need it.
#[derive(Debug)]
struct Remembered {
    id: u64,
    /// The client's address and the server's.
    client: SocketAddr,
    server: SocketAddr,
    /// Segments seen since from the client and from the server.
    segments: [u64; 2],
    first_ns: i64,
    last_ns: i64,
    /// Zeek's view of the stray segments, with whether its originator is the client.
    zeek: Option<(Box<ZeekTracker>, bool)>,
}

/// The memory itself.
pub struct RecentlyClosed {
    map: HashMap<FlowKey, Remembered, FlowHasher>,
    /// (forget time, key, id) in the order remembered.
    order: VecDeque<(i64, FlowKey, u64)>,
    keep_ns: i64,
    log: PostCloseLog,
}

impl RecentlyClosed {
    pub fn new(keep_ns: i64, hasher: FlowHasher) -> RecentlyClosed {
        RecentlyClosed {
            map: HashMap::with_hasher(hasher),
            order: VecDeque::new(),
            keep_ns,
            log: PostCloseLog::default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Remembers a connection reported at `now_ns` after it finished.
    pub fn remember(
        &mut self,
        key: FlowKey,
        id: u64,
        client: SocketAddr,
        server: SocketAddr,
        now_ns: i64,
    ) {
        self.expire(now_ns);
        while self.map.len() >= MAX_REMEMBERED {
            let Some((_, old_key, old_id)) = self.order.pop_front() else {
                break;
            };
            self.forget(old_key, old_id);
        }
        let forget_at = now_ns.saturating_add(self.keep_ns);
        if let Some(old) = self.map.remove(&key) {
            self.record(old);
        }
        self.map.insert(
            key,
            Remembered {
                id,
                client,
                server,
                segments: [0; 2],
                first_ns: 0,
                last_ns: 0,
                zeek: None,
            },
        );
        self.order.push_back((forget_at, key, id));
        // Entries of 4-tuples remembered again (port reuse) stay until met; drop them when
        // they pile up.
        if self.order.len() > 2 * MAX_REMEMBERED {
            let map = &self.map;
            self.order
                .retain(|(_, k, id)| map.get(k).is_some_and(|e| e.id == *id));
        }
    }

    /// Takes `seg` (which missed the table, and is not a SYN) as post-close traffic of a
    /// remembered connection, if its 4-tuple is remembered.
    pub fn absorb(&mut self, key: FlowKey, seg: &Segment) -> bool {
        self.expire(seg.ts_ns);
        let Some(entry) = self.map.get_mut(&key) else {
            return false;
        };
        let from_client = seg.src == entry.client;
        if entry.segments == [0, 0] {
            entry.first_ns = seg.ts_ns;
        }
        entry.segments[usize::from(!from_client)] += 1;
        entry.last_ns = entry.last_ns.max(seg.ts_ns);
        let (tracker, orig_is_client) = entry.zeek.get_or_insert_with(|| {
            // Zeek's originator of the new row, by the flow table's rule (Connection::new).
            let flipped = seg.src.port() < 1024 && seg.dst.port() >= 1024;
            (Box::new(ZeekTracker::new(flipped)), from_client != flipped)
        });
        tracker.observe(seg, from_client == *orig_is_client);
        true
    }

    /// Forgets every 4-tuple and returns what was found.
    pub fn finish(mut self) -> PostCloseLog {
        let keys: Vec<(FlowKey, u64)> = self.order.drain(..).map(|(_, k, id)| (k, id)).collect();
        for (key, id) in keys {
            self.forget(key, id);
        }
        self.log
    }

    /// Forgets the 4-tuples remembered for longer than `keep_ns`.
    fn expire(&mut self, now_ns: i64) {
        while let Some(&(at, key, id)) = self.order.front() {
            if at > now_ns {
                break;
            }
            self.order.pop_front();
            self.forget(key, id);
        }
    }

    /// Forgets `key` if it still holds the connection `id` (a later one may have replaced it).
    fn forget(&mut self, key: FlowKey, id: u64) {
        if self.map.get(&key).is_some_and(|e| e.id == id) {
            if let Some(entry) = self.map.remove(&key) {
                self.record(entry);
            }
        }
    }

    /// Logs a forgotten entry's post-close traffic, if it had any.
    fn record(&mut self, entry: Remembered) {
        if entry.segments == [0, 0] {
            return;
        }
        let log = &mut self.log;
        log.segments += entry.segments[0] + entry.segments[1];
        log.connections += 1;
        if log.by_connection.len() >= MAX_REPORTED {
            return;
        }
        let zeek = match entry.zeek {
            Some((mut tracker, orig_is_client)) => {
                let mut first = tracker.log_view(orig_is_client, true);
                let later = std::mem::take(&mut first.later_rows);
                let mut rows: Vec<ZeekView> = vec![first];
                rows.extend(later);
                rows
            }
            None => Vec::new(),
        };
        log.by_connection.push(PostClose {
            id: entry.id,
            client: entry.client,
            server: entry.server,
            client_segments: entry.segments[0],
            server_segments: entry.segments[1],
            first: secs(entry.first_ns),
            last: secs(entry.last_ns),
            zeek,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::TcpFlags;
    use crate::testkit::segment;

    const SEC: i64 = 1_000_000_000;

    fn seg(src: &str, dst: &str, flags: u8, ts_ns: i64) -> Segment {
        let (src, dst) = (src.parse().unwrap(), dst.parse().unwrap());
        Segment {
            ts_ns,
            frame: 1,
            window: 100,
            ..segment(src, dst, flags, 1, 1, 1)
        }
    }

    const C: &str = "10.0.0.1:40000";
    const S: &str = "10.0.0.2:80";

    fn memory() -> RecentlyClosed {
        RecentlyClosed::new(60 * SEC, FlowHasher::default())
    }

    #[test]
    fn probe_after_reset_counts_per_side_and_keeps_zeeks_new_row() {
        let mut m = memory();
        let probe = seg(C, S, TcpFlags::ACK | TcpFlags::PSH, 15 * SEC);
        let key = FlowKey::of(&probe);
        m.remember(key, 4, C.parse().unwrap(), S.parse().unwrap(), 5 * SEC);
        assert!(m.absorb(key, &probe));
        let mut rst = seg(S, C, TcpFlags::RST, 15 * SEC + 1);
        (rst.seq, rst.payload_len, rst.captured_payload_len) = (1, 0, 0);
        assert!(m.absorb(key, &rst));
        let log = m.finish();
        assert_eq!((log.segments, log.connections), (2, 1));
        let p = &log.by_connection[0];
        assert_eq!((p.id, p.client_segments, p.server_segments), (4, 1, 1));
        let z = &p.zeek[0];
        assert_eq!((z.conn_state.as_str(), z.history.as_str()), ("RSTRH", "Dr"));
    }

    #[test]
    fn forgotten_after_keep_time() {
        let mut m = memory();
        let probe = seg(C, S, TcpFlags::ACK, 66 * SEC);
        let key = FlowKey::of(&probe);
        m.remember(key, 4, C.parse().unwrap(), S.parse().unwrap(), 5 * SEC);
        assert!(!m.absorb(key, &probe));
        assert!(m.is_empty());
        assert_eq!(m.finish().segments, 0);
    }

    #[test]
    fn memory_stays_at_its_cap_oldest_forgotten_first() {
        let mut m = memory();
        let key_of = |port: u32| {
            let src = format!(
                "10.0.{}.{}:{}",
                port >> 16,
                (port >> 8) & 0xff,
                1000 + (port & 0xff)
            );
            FlowKey::of(&seg(&src, S, TcpFlags::ACK, 0))
        };
        for i in 0..=MAX_REMEMBERED as u32 {
            m.remember(
                key_of(i),
                u64::from(i),
                C.parse().unwrap(),
                S.parse().unwrap(),
                SEC,
            );
        }
        assert_eq!(m.map.len(), MAX_REMEMBERED);
        assert!(!m.map.contains_key(&key_of(0)));
        assert!(m.map.contains_key(&key_of(MAX_REMEMBERED as u32)));
    }
}
