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

/// The transitions drawn in RFC 9293 Figure 5, with the figure's event / action text: the
/// one table of the state machine's edges. `tcp` takes these (plus RST's "enter the CLOSED
/// state", §3.10.7.4, from any state, which the figure leaves out), and the graph renderer
/// draws them.
pub const RFC_EDGES: &[(TcpState, TcpState, &str)] = {
    use TcpState::*;
    &[
        (Closed, Listen, "passive OPEN / create TCB"),
        (Closed, SynSent, "active OPEN / create TCB, snd SYN"),
        (Listen, Closed, "CLOSE / delete TCB"),
        (Listen, SynReceived, "rcv SYN / snd SYN,ACK"),
        (Listen, SynSent, "SEND / snd SYN"),
        (SynReceived, Listen, "rcv RST (after a passive OPEN)"),
        (SynSent, SynReceived, "rcv SYN / snd SYN,ACK"),
        (SynSent, Closed, "CLOSE / delete TCB"),
        (SynReceived, Established, "rcv ACK of SYN"),
        (SynSent, Established, "rcv SYN,ACK / snd ACK"),
        (SynReceived, FinWait1, "CLOSE / snd FIN"),
        (Established, FinWait1, "CLOSE / snd FIN"),
        (Established, CloseWait, "rcv FIN / snd ACK"),
        (FinWait1, FinWait2, "rcv ACK of FIN"),
        (FinWait1, Closing, "rcv FIN / snd ACK"),
        (CloseWait, LastAck, "CLOSE / snd FIN"),
        (FinWait2, TimeWait, "rcv FIN / snd ACK"),
        (Closing, TimeWait, "rcv ACK of FIN"),
        (LastAck, Closed, "rcv ACK of FIN"),
        (TimeWait, Closed, "Timeout=2MSL / delete TCB"),
    ]
};

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
