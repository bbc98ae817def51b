//! RFC 9293 connection states (§3.3.2), the single vocabulary every stage speaks.
//!
//! Output uses netstat's spellings (`FIN_WAIT_1`, `CLOSE_WAIT`), the JSON contract; the RFC's
//! hyphenated spellings (`FIN-WAIT-1`) and `ss`'s (`ESTAB`, `SYN-RECV`) are accepted on input.

use serde::{Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TcpState {
    Closed,
    Listen,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
}

impl TcpState {
    pub const ALL: [TcpState; 11] = [
        TcpState::Closed,
        TcpState::Listen,
        TcpState::SynSent,
        TcpState::SynReceived,
        TcpState::Established,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::CloseWait,
        TcpState::Closing,
        TcpState::LastAck,
        TcpState::TimeWait,
    ];

    /// netstat's spelling, used in all output.
    pub fn as_str(self) -> &'static str {
        match self {
            TcpState::Closed => "CLOSED",
            TcpState::Listen => "LISTEN",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynReceived => "SYN_RECEIVED",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait1 => "FIN_WAIT_1",
            TcpState::FinWait2 => "FIN_WAIT_2",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::Closing => "CLOSING",
            TcpState::LastAck => "LAST_ACK",
            TcpState::TimeWait => "TIME_WAIT",
        }
    }

    /// RFC 9293's spelling (`FIN-WAIT-1`), for diagrams drawn the textbook way.
    pub fn rfc_name(self) -> &'static str {
        match self {
            TcpState::Closed => "CLOSED",
            TcpState::Listen => "LISTEN",
            TcpState::SynSent => "SYN-SENT",
            TcpState::SynReceived => "SYN-RECEIVED",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait1 => "FIN-WAIT-1",
            TcpState::FinWait2 => "FIN-WAIT-2",
            TcpState::CloseWait => "CLOSE-WAIT",
            TcpState::Closing => "CLOSING",
            TcpState::LastAck => "LAST-ACK",
            TcpState::TimeWait => "TIME-WAIT",
        }
    }

    /// States in which the endpoint has sent its FIN.
    pub fn has_sent_fin(self) -> bool {
        matches!(
            self,
            TcpState::FinWait1
                | TcpState::FinWait2
                | TcpState::Closing
                | TcpState::LastAck
                | TcpState::TimeWait
        )
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TcpState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl FromStr for TcpState {
    type Err = String;
    /// Accepts netstat (`CLOSE_WAIT`, `FIN_WAIT2`, `SYN_RECV`), RFC (`CLOSE-WAIT`) and `ss`
    /// (`ESTAB`, `CLOSE-WAIT`, `UNCONN`) spellings, case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm: String = s
            .trim()
            .to_ascii_uppercase()
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .collect();
        Ok(match norm.as_str() {
            "CLOSED" | "CLOSE" | "UNCONN" => TcpState::Closed,
            "LISTEN" => TcpState::Listen,
            "SYNSENT" => TcpState::SynSent,
            "SYNRECEIVED" | "SYNRECV" | "SYNRCVD" => TcpState::SynReceived,
            "ESTABLISHED" | "ESTAB" => TcpState::Established,
            "FINWAIT1" => TcpState::FinWait1,
            "FINWAIT2" => TcpState::FinWait2,
            "CLOSEWAIT" => TcpState::CloseWait,
            "CLOSING" => TcpState::Closing,
            "LASTACK" => TcpState::LastAck,
            "TIMEWAIT" => TcpState::TimeWait,
            _ => return Err(format!("unknown TCP state '{s}'")),
        })
    }
}

/// What the wire shows an endpoint do or learn: the inputs of the state machine
/// (`tcp::next`). A capture sees segments, not system calls, so these are the segments
/// (and the one timer) that move an endpoint, not the RFC's user calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// It sent a SYN without ACK (or the peer's SYN,ACK, seen first, implies it did).
    SendSyn,
    /// It sent a SYN,ACK answering the peer's SYN.
    SendSynAck,
    /// It acknowledged the peer's SYN,ACK: its own SYN was acknowledged.
    ReceiveSynAck,
    /// The peer acknowledged its SYN,ACK.
    ReceiveAckOfSyn,
    /// A segment shows it synchronized although the capture missed how: the capture began
    /// mid-connection, or the SYN,ACK or the final ACK of the handshake was not captured.
    HandshakeNotCaptured,
    /// It sent its FIN (a retransmitted FIN is the same FIN).
    SendFin,
    /// The peer's FIN arrived at it.
    ReceiveFin,
    /// The peer acknowledged its FIN.
    ReceiveAckOfFin,
    /// A valid RST, sent or received: both ends are CLOSED.
    Reset,
    /// Its TIME-WAIT ran out before the capture's end.
    TimeWaitTimeout,
    /// A new SYN reused the 4-tuple while it was in TIME-WAIT.
    NewSynInTimeWait,
}

impl Event {
    pub const ALL: [Event; 11] = [
        Event::SendSyn,
        Event::SendSynAck,
        Event::ReceiveSynAck,
        Event::ReceiveAckOfSyn,
        Event::HandshakeNotCaptured,
        Event::SendFin,
        Event::ReceiveFin,
        Event::ReceiveAckOfFin,
        Event::Reset,
        Event::TimeWaitTimeout,
        Event::NewSynInTimeWait,
    ];
}

/// One edge of the state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    pub from: TcpState,
    pub to: TcpState,
    /// The events on which `tcp::next` takes it (none: an edge of the figure a capture
    /// cannot show, such as a passive OPEN).
    pub on: &'static [Event],
    /// RFC 9293 Figure 5's event / action text, when the figure draws the edge.
    pub figure: Option<&'static str>,
}

/// The one table of the state machine's edges: every edge RFC 9293 Figure 5 draws (first,
/// in the order the graph renderer draws them), then the edges the machine takes that the
/// figure leaves out (RST's "enter the CLOSED state", §3.10.7.4, from any state; FIN in
/// SYN-RECEIVED; the endpoints a capture joined late). `tcp::next` takes exactly the
/// edges listed here on exactly the events listed (a unit test proves it for every state
/// and event), and the graph renderer draws the figure's.
pub const TRANSITIONS: &[Transition] = {
    use Event::*;
    use TcpState::*;
    const fn figure(
        from: TcpState,
        to: TcpState,
        text: &'static str,
        on: &'static [Event],
    ) -> Transition {
        Transition {
            from,
            to,
            on,
            figure: Some(text),
        }
    }
    const fn beyond(from: TcpState, to: TcpState, on: &'static [Event]) -> Transition {
        Transition {
            from,
            to,
            on,
            figure: None,
        }
    }
    &[
        figure(Closed, Listen, "passive OPEN / create TCB", &[]),
        figure(
            Closed,
            SynSent,
            "active OPEN / create TCB, snd SYN",
            &[SendSyn],
        ),
        figure(Listen, Closed, "CLOSE / delete TCB", &[Reset]),
        figure(Listen, SynReceived, "rcv SYN / snd SYN,ACK", &[SendSynAck]),
        figure(Listen, SynSent, "SEND / snd SYN", &[]),
        figure(SynReceived, Listen, "rcv RST (after a passive OPEN)", &[]),
        figure(SynSent, SynReceived, "rcv SYN / snd SYN,ACK", &[]),
        figure(SynSent, Closed, "CLOSE / delete TCB", &[Reset]),
        figure(
            SynReceived,
            Established,
            "rcv ACK of SYN",
            &[ReceiveAckOfSyn, HandshakeNotCaptured],
        ),
        figure(
            SynSent,
            Established,
            "rcv SYN,ACK / snd ACK",
            &[ReceiveSynAck, HandshakeNotCaptured],
        ),
        figure(SynReceived, FinWait1, "CLOSE / snd FIN", &[SendFin]),
        figure(Established, FinWait1, "CLOSE / snd FIN", &[SendFin]),
        figure(Established, CloseWait, "rcv FIN / snd ACK", &[ReceiveFin]),
        figure(FinWait1, FinWait2, "rcv ACK of FIN", &[ReceiveAckOfFin]),
        figure(FinWait1, Closing, "rcv FIN / snd ACK", &[ReceiveFin]),
        figure(CloseWait, LastAck, "CLOSE / snd FIN", &[SendFin]),
        figure(FinWait2, TimeWait, "rcv FIN / snd ACK", &[ReceiveFin]),
        figure(Closing, TimeWait, "rcv ACK of FIN", &[ReceiveAckOfFin]),
        figure(LastAck, Closed, "rcv ACK of FIN", &[ReceiveAckOfFin, Reset]),
        figure(
            TimeWait,
            Closed,
            "Timeout=2MSL / delete TCB",
            &[TimeWaitTimeout, NewSynInTimeWait, Reset],
        ),
        beyond(Closed, SynReceived, &[SendSynAck]),
        beyond(Closed, Established, &[HandshakeNotCaptured]),
        beyond(SynReceived, CloseWait, &[ReceiveFin]),
        beyond(SynReceived, Closed, &[Reset]),
        beyond(Established, Closed, &[Reset]),
        beyond(FinWait1, Closed, &[Reset]),
        beyond(FinWait2, Closed, &[Reset]),
        beyond(CloseWait, Closed, &[Reset]),
        beyond(Closing, Closed, &[Reset]),
    ]
};

/// How many edges of [`TRANSITIONS`] RFC 9293 Figure 5 draws.
const FIGURE_EDGES: usize = {
    let mut n = 0;
    let mut i = 0;
    while i < TRANSITIONS.len() {
        if TRANSITIONS[i].figure.is_some() {
            n += 1;
        }
        i += 1;
    }
    n
};

/// The transitions drawn in RFC 9293 Figure 5, with the figure's event / action text: the
/// figure's rows of [`TRANSITIONS`], in order, for the graph renderer to draw.
pub const RFC_EDGES: &[(TcpState, TcpState, &str)] = &{
    let mut edges = [(TcpState::Closed, TcpState::Closed, ""); FIGURE_EDGES];
    let (mut i, mut n) = (0, 0);
    while i < TRANSITIONS.len() {
        if let Some(text) = TRANSITIONS[i].figure {
            edges[n] = (TRANSITIONS[i].from, TRANSITIONS[i].to, text);
            n += 1;
        }
        i += 1;
    }
    edges
};

/// The figure's event text for `from → to`, if the figure draws that edge.
pub fn rfc_event(from: TcpState, to: TcpState) -> Option<&'static str> {
    RFC_EDGES
        .iter()
        .find(|(a, b, _)| *a == from && *b == to)
        .map(|e| e.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_netstat_rfc_and_ss_spellings() {
        assert_eq!("CLOSE_WAIT".parse::<TcpState>(), Ok(TcpState::CloseWait));
        assert_eq!("close-wait".parse::<TcpState>(), Ok(TcpState::CloseWait));
        assert_eq!("FIN_WAIT2".parse::<TcpState>(), Ok(TcpState::FinWait2));
        assert_eq!("ESTAB".parse::<TcpState>(), Ok(TcpState::Established));
        assert_eq!("SYN-RECV".parse::<TcpState>(), Ok(TcpState::SynReceived));
        assert!("BOGUS".parse::<TcpState>().is_err());
    }

    #[test]
    fn displays_netstat_spelling() {
        for s in TcpState::ALL {
            assert_eq!(s.to_string().parse::<TcpState>(), Ok(s));
        }
        assert_eq!(TcpState::FinWait1.rfc_name(), "FIN-WAIT-1");
    }
}
