//! Decoding on a thread of its own: [`SegmentFeed`] hands out the segments of a
//! [`SegmentStream`] either read and decoded on the calling thread, or on a second thread
//! that runs ahead in batches.
//!
//! Why: on a big capture the analysis thread is the one the whole run waits for, and a
//! sixth of its time went to parsing records and decoding headers, work that needs no
//! connection state. Moved to its own thread, it overlaps with the state machines (the
//! read-ahead thread of `source.rs` already overlaps the copying out of the page cache).
//! A batch holds a few hundred segments and their payload bytes; a few batches are in
//! flight at once and go back to the decoding thread once read, so the memory stays a
//! few MiB whatever the capture's size, and nothing is allocated per batch after the
//! first few.
//!
//! Standard input is decoded on the calling thread: a live capture wants each segment
//! analysed as soon as it is read, not once a batch is full.

use super::SegmentStream;
use crate::segment::Segment;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender};
use std::thread::JoinHandle;

/// Segments per batch at most.
const BATCH_SEGMENTS: usize = 512;

/// Payload bytes per batch: a batch is handed over once it holds this many (a batch of
/// full-sized jumbo segments must not grow without bound).
const BATCH_PAYLOAD_BYTES: usize = 512 * 1024;

/// Batches decoded ahead of the analysis, waiting in the channel.
const BATCHES_AHEAD: usize = 4;

/// Segments and their captured payloads, in capture order.
#[derive(Default)]
struct Batch {
    segments: Vec<Segment>,
    /// The end of each segment's payload in `payloads` (it starts where the one before
    /// ends).
    payload_ends: Vec<usize>,
    payloads: Vec<u8>,
    /// [`SegmentStream::bytes_consumed`] once the batch was full.
    bytes_consumed: u64,
}

impl Batch {
    fn clear(&mut self) {
        self.segments.clear();
        self.payload_ends.clear();
        self.payloads.clear();
    }

    fn push(&mut self, segment: Segment, payload: &[u8]) {
        self.segments.push(segment);
        self.payloads.extend_from_slice(payload);
        self.payload_ends.push(self.payloads.len());
    }

    fn is_full(&self) -> bool {
        self.segments.len() >= BATCH_SEGMENTS || self.payloads.len() >= BATCH_PAYLOAD_BYTES
    }

    fn get(&self, i: usize) -> Option<(Segment, &[u8])> {
        let segment = *self.segments.get(i)?;
        let start = if i == 0 { 0 } else { self.payload_ends[i - 1] };
        Some((segment, &self.payloads[start..self.payload_ends[i]]))
    }
}

/// Where the analysis takes its segments from.
pub enum SegmentFeed {
    /// Decoded on the calling thread, one at a time.
    Here(Box<SegmentStream>),
    /// Decoded on a thread of its own, in batches.
    Ahead(DecodeAhead),
}

impl SegmentFeed {
    /// Decodes `stream` on a thread of its own when `ahead`, and on the calling thread
    /// otherwise (or when no thread can be started).
    pub fn new(stream: SegmentStream, ahead: bool) -> SegmentFeed {
        let stream = Box::new(stream);
        if !ahead {
            return SegmentFeed::Here(stream);
        }
        DecodeAhead::spawn(stream).map_or_else(SegmentFeed::Here, SegmentFeed::Ahead)
    }

    /// The next segment and its captured payload, in the stream's order. The payload is
    /// borrowed until the next call.
    pub fn next_segment(&mut self) -> Option<(Segment, &[u8])> {
        match self {
            SegmentFeed::Here(stream) => {
                let segment = *stream.next_segment()?;
                Some((segment, stream.payload()))
            }
            SegmentFeed::Ahead(ahead) => ahead.next_segment(),
        }
    }

    /// Bytes of the inputs read so far (as of the last batch handed out, when ahead).
    pub fn bytes_consumed(&self) -> u64 {
        match self {
            SegmentFeed::Here(stream) => stream.bytes_consumed(),
            SegmentFeed::Ahead(ahead) => ahead.current.bytes_consumed,
        }
    }

    /// The stream, once every segment was handed out (for its stats and its end).
    pub fn into_stream(self) -> SegmentStream {
        match self {
            SegmentFeed::Here(stream) => *stream,
            SegmentFeed::Ahead(ahead) => ahead.join(),
        }
    }
}

/// A [`SegmentStream`] decoded on a thread of its own.
pub struct DecodeAhead {
    batches: Receiver<Batch>,
    /// Batches read, going back to be filled again.
    spare: Sender<Batch>,
    current: Batch,
    /// The next segment of `current` to hand out.
    next: usize,
    worker: Option<JoinHandle<SegmentStream>>,
}

impl DecodeAhead {
    /// Starts the decoding thread; hands the stream back if it cannot be started.
    fn spawn(stream: Box<SegmentStream>) -> Result<DecodeAhead, Box<SegmentStream>> {
        let (batch_tx, batches) = sync_channel::<Batch>(BATCHES_AHEAD);
        let (spare, spare_rx) = channel::<Batch>();
        // The stream is handed over once the thread runs, and back if it cannot start.
        let (stream_tx, stream_rx) = channel::<Box<SegmentStream>>();
        let spawned = std::thread::Builder::new()
            .name("closewait-decode".into())
            .spawn(move || {
                let mut stream = *stream_rx.recv().expect("the stream is sent once spawned");
                loop {
                    let mut batch = spare_rx.try_recv().unwrap_or_default();
                    batch.clear();
                    while !batch.is_full() {
                        let Some(segment) = stream.next_segment() else {
                            break;
                        };
                        let segment = *segment;
                        batch.push(segment, stream.payload());
                    }
                    batch.bytes_consumed = stream.bytes_consumed();
                    let last = !batch.is_full();
                    // The receiver only goes away when the analysis stopped reading.
                    if !batch.segments.is_empty() && batch_tx.send(batch).is_err() || last {
                        return stream;
                    }
                }
            });
        match spawned {
            Ok(worker) => {
                stream_tx
                    .send(stream)
                    .expect("the decoding thread waits for its stream");
                Ok(DecodeAhead {
                    batches,
                    spare,
                    current: Batch::default(),
                    next: 0,
                    worker: Some(worker),
                })
            }
            Err(_) => Err(stream),
        }
    }

    fn next_segment(&mut self) -> Option<(Segment, &[u8])> {
        if self.next == self.current.segments.len() {
            // Every batch but the last is full; a closed channel is the end.
            let batch = self.batches.recv().ok()?;
            let done = std::mem::replace(&mut self.current, batch);
            // The decoding thread may have finished already.
            let _ = self.spare.send(done);
            self.next = 0;
        }
        let at = self.next;
        self.next += 1;
        self.current.get(at)
    }

    /// Waits for the decoding thread to hand the stream back (a panic there goes on
    /// here).
    fn join(mut self) -> SegmentStream {
        // Whatever was not read is not wanted: dropping the receiver ends the thread.
        drop(std::mem::replace(&mut self.batches, sync_channel(1).1));
        match self.worker.take().expect("joined once").join() {
            Ok(stream) => stream,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::testutil::{frames, pcap_file, Pkt};
    use crate::decode::linktype;
    use std::io::{Cursor, Read};

    /// Every segment and payload, then the stats, as the analysis would read them.
    fn read_all(data: &[u8], ahead: bool) -> (Vec<(Segment, Vec<u8>)>, String) {
        let input = vec![(
            "x".to_string(),
            Box::new(Cursor::new(data.to_vec())) as Box<dyn Read + Send>,
        )];
        let stream = SegmentStream::open_readers(input).expect("opens");
        let mut feed = SegmentFeed::new(stream, ahead);
        assert_eq!(matches!(feed, SegmentFeed::Ahead(_)), ahead);
        let mut read = Vec::new();
        while let Some((segment, payload)) = feed.next_segment() {
            read.push((segment, payload.to_vec()));
        }
        (read, format!("{:?}", feed.into_stream().into_stats()))
    }

    /// Decoded ahead, a capture gives what it gives decoded here, segment for segment,
    /// byte for byte and stat for stat: across batches cut by their segment count (a
    /// thousand tiny segments) and by their payload bytes (a thousand of 1400 bytes),
    /// whole and cut short in a record (the warning and the segments before it).
    #[test]
    fn decoding_ahead_reads_what_decoding_here_reads() {
        const SEC: i64 = 1_000_000_000;
        let mut pkts = Vec::new();
        let mut seq = 1000u32;
        for i in 0..2000u32 {
            let len = if i < 1000 { (i % 7) as usize } else { 1400 };
            let payload: Vec<u8> = (0..len).map(|b| (b as u32 + i) as u8).collect();
            let data = frames::eth_v4_tcp_ports(40000, 80, seq, &payload, |b| b.ack(1));
            seq = seq.wrapping_add(len as u32);
            pkts.push(Pkt::new(1_700_000_000 * SEC + i64::from(i) * 1000, data));
        }
        let file = pcap_file(linktype::ETHERNET, false, false, &pkts);
        let whole = read_all(&file, false);
        assert_eq!(whole.0.len(), 2000);
        assert_eq!(whole.0[1500].1.len(), 1400);
        assert_eq!(read_all(&file, true), whole);
        let cut = &file[..file.len() - 700];
        let cut_here = read_all(cut, false);
        assert_eq!(cut_here.0.len(), 1999);
        assert!(cut_here.1.contains("truncated: true"), "{}", cut_here.1);
        assert_eq!(read_all(cut, true), cut_here);
    }

    /// The analysis may stop reading before the end: the decoding thread then ends, and
    /// the stream comes back.
    #[test]
    fn a_feed_left_early_still_hands_its_stream_back() {
        let pkts: Vec<Pkt> = (0..3000)
            .map(|i| Pkt::new(i, frames::eth_v4_tcp(b"x", |b| b.ack(1))))
            .collect();
        let file = pcap_file(linktype::ETHERNET, false, false, &pkts);
        let input = vec![(
            "x".to_string(),
            Box::new(Cursor::new(file)) as Box<dyn Read + Send>,
        )];
        let mut feed = SegmentFeed::new(SegmentStream::open_readers(input).expect("opens"), true);
        assert!(feed.next_segment().is_some());
        let stream = feed.into_stream();
        assert!(stream.frames_read() >= 1);
    }
}
