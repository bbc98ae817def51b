//! Colours of the TCP states, shared by every picture closewait draws (ladders, charts, the
//! state graph), so CLOSE_WAIT is the same red everywhere.
//!
//! [`state_color`] is the ladder's palette: one mid-tone per family of states, white text
//! reads on each. Charts that show several states of one family side by side (FIN_WAIT_1
//! next to FIN_WAIT_2 on a timeline, SYN_SENT and SYN_RECEIVED as two curves) need to tell
//! them apart, so [`state_color_distinct`] keeps the family's colour for its main state and
//! gives the others a lighter or darker tint of the same hue.

use closewait_core::state::TcpState;

/// Fill colour of a state (pills and lifeline bands of the ladder); white text reads on each.
pub fn state_color(s: TcpState) -> &'static str {
    match s {
        TcpState::Established => "#1a7f37",
        TcpState::SynSent | TcpState::SynReceived | TcpState::Listen => "#6639ba",
        TcpState::FinWait1 | TcpState::FinWait2 | TcpState::Closing => "#9a6700",
        TcpState::CloseWait => "#cf222e",
        TcpState::LastAck => "#bc4c00",
        TcpState::TimeWait => "#0550ae",
        TcpState::Closed => "#57606a",
    }
}

/// [`state_color`], with a distinct tint for each state that shares its family's colour.
pub fn state_color_distinct(s: TcpState) -> &'static str {
    match s {
        TcpState::SynReceived => "#8250df",
        TcpState::Listen => "#a475f9",
        TcpState::FinWait1 => "#d4a72c",
        TcpState::Closing => "#6b4700",
        other => state_color(other),
    }
}

/// `#rrggbb` as three bytes (black for anything else: the palette is all `#rrggbb`).
pub fn rgb(hex: &str) -> (u8, u8, u8) {
    let h = hex.trim_start_matches('#');
    let byte = |i: usize| {
        h.get(i..i + 2)
            .and_then(|b| u8::from_str_radix(b, 16).ok())
            .unwrap_or(0)
    };
    if h.len() != 6 {
        return (0, 0, 0);
    }
    (byte(0), byte(2), byte(4))
}

/// XML text and attribute escaping for hand-written SVG: [`crate::render::markup::xml`].
pub use crate::render::markup::xml as xml_escape;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn distinct_palette_gives_every_state_its_own_colour() {
        let colours: BTreeSet<&str> = TcpState::ALL
            .iter()
            .map(|s| state_color_distinct(*s))
            .collect();
        assert_eq!(colours.len(), TcpState::ALL.len());
        // The main state of each family keeps the ladder's colour.
        for s in [
            TcpState::SynSent,
            TcpState::FinWait2,
            TcpState::CloseWait,
            TcpState::TimeWait,
        ] {
            assert_eq!(state_color_distinct(s), state_color(s));
        }
    }

    #[test]
    fn hex_colours_parse() {
        assert_eq!(rgb("#cf222e"), (0xcf, 0x22, 0x2e));
        assert_eq!(rgb("nonsense"), (0, 0, 0));
        assert_eq!(xml_escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
