//! Lines of saved `netstat` / `ss` output → [`Socket`]s.
//!
//! The tools disagree on nearly everything but the order of their columns, so each line is
//! recognised by its first tokens and read by position:
//!
//! | tool                         | columns                                                    |
//! |------------------------------|------------------------------------------------------------|
//! | Linux `netstat -tan[po]`     | `tcp[6] Recv-Q Send-Q Local Foreign State [PID/Program] [Timer]` |
//! | BSD/macOS `netstat -an`      | `tcp4 Recv-Q Send-Q 10.0.0.1.80 10.0.0.2.51000 ESTABLISHED` |
//! | Windows `netstat -an[o]`     | `TCP Local Foreign State [PID]`                            |
//! | `ss -tan[poi]`               | `State Recv-Q Send-Q Local Peer [timer:(…)] [users:((…))]`, info lines indented by a tab |
//! | `ss -an` (all protocols)     | `Netid State Recv-Q Send-Q Local Peer …`                   |
//! | `ss -tan state X`            | `Recv-Q Send-Q Local Peer [Process]`: no State column      |
//! | `ss -an state X`             | `Netid Recv-Q Send-Q Local Peer [Process]`                  |
//!
//! `ss … state close-wait` (the way engineers ask for leaked sockets) filters on the state and
//! prints no State column, so its lines carry no state: [`parse_in_state`] takes the state the
//! listing was filtered on; without it such lines are counted in [`Parsed::stateless`] and
//! the caller refuses the input.
//!
//! Anything else (headers, UDP and UNIX sockets, `ss -i` info lines) is not a TCP socket
//! and is passed over silently; a line that starts like a TCP socket but cannot be read is
//! kept in [`Parsed::skipped`] with the reason, so nothing is dropped unseen. Never panics
//! on input: every token is checked.

use super::{Endpoint, Host, Port, Process, Socket, Tool};
use closewait_core::state::TcpState;
use std::net::IpAddr;

/// What a whole input gave.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Parsed {
    /// The tool that printed the input (`Mixed` when lines of both were found).
    pub tool: Option<Tool>,
    /// Lines read.
    pub lines: usize,
    pub sockets: Vec<Socket>,
    /// Lines that looked like TCP sockets but could not be read.
    pub skipped: Vec<Skipped>,
    /// `ss … state X` socket lines (no State column) read without a state to give them:
    /// not in [`Parsed::sockets`].
    pub stateless: usize,
}

/// A line that started like a TCP socket but could not be read.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// 1-based line number.
    pub line: usize,
    pub text: String,
    pub why: String,
}

/// Parses the whole output of one `netstat` or `ss` run (several concatenated runs work too).
pub fn parse(text: &str) -> Parsed {
    parse_in_state(text, None)
}

/// [`parse`], giving `state` to the lines of `ss … state X` output, which print no State
/// column (`state` is the one the listing was filtered on). Lines with a State column keep
/// their own.
pub fn parse_in_state(text: &str, state: Option<TcpState>) -> Parsed {
    let mut out = Parsed::default();
    for (i, raw) in text.lines().enumerate() {
        out.lines += 1;
        let line = i + 1;
        match parse_line(raw, state) {
            Line::Socket(tool, mut s) => {
                s.line = line;
                out.tool = Some(match out.tool {
                    None => tool,
                    Some(t) if t == tool => t,
                    Some(_) => Tool::Mixed,
                });
                out.sockets.push(s);
            }
            Line::Bad(why) => out.skipped.push(Skipped {
                line,
                text: raw.trim_end().to_string(),
                why,
            }),
            Line::Stateless => out.stateless += 1,
            Line::Other => {}
        }
    }
    out
}

enum Line {
    Socket(Tool, Socket),
    /// Starts like a TCP socket line, but something in it is unreadable.
    Bad(String),
    /// An `ss … state X` socket line (no State column) and no state to give it.
    Stateless,
    /// Not a TCP socket line (header, UDP, UNIX, info line, blank).
    Other,
}

fn parse_line(raw: &str, filtered_on: Option<TcpState>) -> Line {
    // `ss -i` prints each socket's details on the next line, indented by a tab.
    if raw.starts_with('\t') {
        return Line::Other;
    }
    let toks: Vec<&str> = raw.split_whitespace().collect();
    let Some(first) = toks.first() else {
        return Line::Other;
    };
    let proto = first.to_ascii_lowercase();
    if let Some(state) = state_of(first) {
        return ss_line(state, &toks[1..]);
    }
    // `ss -tan state X`: the queues first.
    if is_stateless_ss(&toks) {
        return match filtered_on {
            Some(state) => ss_line(state, &toks),
            None => Line::Stateless,
        };
    }
    if !proto.starts_with("tcp") {
        return Line::Other;
    }
    // `ss -an`: a Netid column before the state.
    if let Some(state) = toks.get(1).and_then(|t| state_of(t)) {
        return ss_line(state, &toks[2..]);
    }
    // `ss -an state X`: a Netid column, no state.
    if is_stateless_ss(&toks[1..]) {
        return match filtered_on {
            Some(state) => ss_line(state, &toks[1..]),
            None => Line::Stateless,
        };
    }
    netstat_line(&toks[1..])
}

/// `Recv-Q Send-Q Local Peer [users:((…))]`: two numbers, two addresses, and no state after
/// them (Linux netstat's `Recv-Q Send-Q Local Foreign` always has one).
fn is_stateless_ss(toks: &[&str]) -> bool {
    let [recv_q, send_q, local, remote, rest @ ..] = toks else {
        return false;
    };
    number(recv_q).is_some()
        && number(send_q).is_some()
        && parse_endpoint(local).is_some()
        && parse_endpoint(remote).is_some()
        && rest.first().is_none_or(|t| state_of(t).is_none())
}

/// `Recv-Q Send-Q Local Peer [rest]` after an ss state.
fn ss_line(state: TcpState, toks: &[&str]) -> Line {
    let [recv_q, send_q, local, remote, rest @ ..] = toks else {
        return Line::Bad("too few columns for an ss line".to_string());
    };
    let (Some(recv_q), Some(send_q)) = (number(recv_q), number(send_q)) else {
        return Line::Bad("Recv-Q/Send-Q are not numbers".to_string());
    };
    let (local, remote) = match endpoints(local, remote) {
        Ok(pair) => pair,
        Err(why) => return Line::Bad(why),
    };
    Line::Socket(
        Tool::Ss,
        Socket {
            line: 0,
            state,
            local,
            remote,
            recv_q: Some(recv_q),
            send_q: Some(send_q),
            process: ss_process(&rest.join(" ")),
        },
    )
}

/// The columns after `tcp`/`tcp6`/`TCP`: with queues (Linux, BSD) or without (Windows).
fn netstat_line(toks: &[&str]) -> Line {
    let queues = toks.len() >= 2 && number(toks[0]).is_some() && number(toks[1]).is_some();
    let (recv_q, send_q, toks) = if queues {
        (number(toks[0]), number(toks[1]), &toks[2..])
    } else {
        (None, None, toks)
    };
    let [local, remote, state, rest @ ..] = toks else {
        return Line::Bad("too few columns for a netstat line".to_string());
    };
    let Some(state) = state_of(state) else {
        return Line::Bad(format!("'{state}' is not a TCP state"));
    };
    let (local, remote) = match endpoints(local, remote) {
        Ok(pair) => pair,
        Err(why) => return Line::Bad(why),
    };
    let process = rest.first().and_then(|t| netstat_process(t, !queues));
    Line::Socket(
        Tool::Netstat,
        Socket {
            line: 0,
            state,
            local,
            remote,
            recv_q,
            send_q,
            process,
        },
    )
}

fn endpoints(local: &str, remote: &str) -> Result<(Endpoint, Endpoint), String> {
    let l = parse_endpoint(local).ok_or_else(|| format!("cannot read address '{local}'"))?;
    let r = parse_endpoint(remote).ok_or_else(|| format!("cannot read address '{remote}'"))?;
    Ok((l, r))
}

fn number(s: &str) -> Option<u64> {
    s.parse().ok()
}

/// A state in any tool's spelling; Windows says `LISTENING`.
fn state_of(tok: &str) -> Option<TcpState> {
    if tok.eq_ignore_ascii_case("LISTENING") {
        return Some(TcpState::Listen);
    }
    // Digits and addresses are never states; saves FromStr's allocation on most tokens.
    if !tok.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    tok.parse().ok()
}

/// Linux netstat's `1234/java` (`-` when the socket has no process, as an orphan or a
/// TIME_WAIT); Windows' bare PID.
fn netstat_process(tok: &str, windows: bool) -> Option<Process> {
    if let Some((pid, name)) = tok.split_once('/') {
        let pid = pid.parse().ok()?;
        return Some(Process {
            name: (!name.is_empty()).then(|| name.to_string()),
            pid: Some(pid),
        });
    }
    if windows {
        return tok.parse().ok().map(|pid| Process {
            name: None,
            pid: Some(pid),
        });
    }
    None
}

/// ss's `users:(("java",pid=1234,fd=56),("java",pid=1234,fd=57))`: the first user.
fn ss_process(rest: &str) -> Option<Process> {
    let users = &rest[rest.find("users:((")? + "users:((".len()..];
    let first = users.split(")").next()?;
    let mut parts = first.split(',');
    let name = parts
        .next()
        .map(|n| n.trim_matches('"').to_string())
        .filter(|n| !n.is_empty());
    let pid = parts.find_map(|p| p.strip_prefix("pid=")?.parse().ok());
    (name.is_some() || pid.is_some()).then_some(Process { name, pid })
}

/// One address column: `10.0.0.1:80`, `[::ffff:10.0.0.1]:80`, `::1:8080` and `:::80`
/// (netstat's unbracketed IPv6), `*:*`, `0.0.0.0:*`, `192.168.1.5%eth0:22`,
/// `[fe80::1]%eth0:22`, BSD's `10.0.0.1.80` and `*.*`, names from runs without `-n`
/// (`localhost:http`). IPv4-mapped IPv6 addresses become IPv4 (that is what a capture
/// shows on the wire), the unspecified address becomes `*`.
pub fn parse_endpoint(s: &str) -> Option<Endpoint> {
    if let Some(inner) = s.strip_prefix('[') {
        let (host, after) = inner.split_once(']')?;
        let after = strip_scope(after);
        let port = after.strip_prefix(':')?;
        return Some(Endpoint {
            host: ip_host(strip_scope_suffix(host))?,
            port: port_of(port)?,
        });
    }
    // `host:port`, the host possibly an unbracketed IPv6 address (netstat).
    if let Some((host, port)) = s.rsplit_once(':') {
        if let (Some(host), Some(port)) = (host_of(host), port_of(port)) {
            return Some(Endpoint { host, port });
        }
    }
    // BSD: `host.port`.
    let (host, port) = s.rsplit_once('.')?;
    let host = host_of(host)?;
    // A bare name split at its last dot would be nonsense: only addresses and `*`.
    if matches!(host, Host::Name(_)) {
        return None;
    }
    Some(Endpoint {
        host,
        port: port_of(port)?,
    })
}

/// `%eth0:22` → `:22`.
fn strip_scope(after_bracket: &str) -> &str {
    match after_bracket.strip_prefix('%') {
        Some(rest) => rest.find(':').map(|i| &rest[i..]).unwrap_or(""),
        None => after_bracket,
    }
}

/// `fe80::1%eth0` → `fe80::1`.
fn strip_scope_suffix(host: &str) -> &str {
    host.split('%').next().unwrap_or(host)
}

fn host_of(s: &str) -> Option<Host> {
    let s = strip_scope_suffix(s);
    if s.is_empty() {
        return None;
    }
    if s == "*" {
        return Some(Host::Any);
    }
    if let Some(h) = ip_host(s) {
        return Some(h);
    }
    // A host name (output without -n): letters, digits, dots and dashes only.
    let name_like = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric());
    name_like.then(|| Host::Name(s.to_string()))
}

fn ip_host(s: &str) -> Option<Host> {
    let ip: IpAddr = s.parse().ok()?;
    let ip = ip.to_canonical();
    Some(if ip.is_unspecified() {
        Host::Any
    } else {
        Host::Ip(ip)
    })
}

fn port_of(s: &str) -> Option<Port> {
    if s == "*" {
        return Some(Port::Any);
    }
    if let Ok(n) = s.parse::<u16>() {
        return Some(Port::Num(n));
    }
    let name_like = !s.is_empty()
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    name_like.then(|| Port::Name(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str) -> String {
        parse_endpoint(s)
            .map(|e| e.to_string())
            .unwrap_or_else(|| "NONE".to_string())
    }

    #[test]
    fn endpoints_in_every_spelling() {
        assert_eq!(ep("10.77.0.2:8788"), "10.77.0.2:8788");
        assert_eq!(ep("[::ffff:10.0.0.1]:80"), "10.0.0.1:80");
        assert_eq!(ep(":::80"), "*:80");
        assert_eq!(ep(":::*"), "*:*");
        assert_eq!(ep("::1:39100"), "[::1]:39100");
        assert_eq!(ep("[::1]:8080"), "[::1]:8080");
        assert_eq!(ep("*:*"), "*:*");
        assert_eq!(ep("*:8080"), "*:8080");
        assert_eq!(ep("0.0.0.0:*"), "*:*");
        assert_eq!(ep("[::]:22"), "*:22");
        assert_eq!(ep("192.168.1.5%eth0:22"), "192.168.1.5:22");
        assert_eq!(ep("[fe80::1]%eth0:22"), "[fe80::1]:22");
        assert_eq!(ep("[fe80::1%eth0]:22"), "[fe80::1]:22");
        assert_eq!(ep("10.0.0.1.443"), "10.0.0.1:443");
        assert_eq!(ep("*.*"), "*:*");
        assert_eq!(ep("::1.8080"), "[::1]:8080");
        assert_eq!(ep("localhost:http"), "localhost:http");
        assert_eq!(ep("2001:db8::7:443"), "[2001:db8::7]:443");
        for bad in [
            "",
            ":",
            "10.0.0.1",
            "[::1]",
            "[::1]80",
            "x y:80",
            "10.0.0.1:99999",
        ] {
            assert_eq!(ep(bad), "NONE", "{bad:?}");
        }
    }

    #[test]
    fn linux_netstat_with_program_column() {
        let p = parse(
            "Active Internet connections (servers and established)\n\
             Proto Recv-Q Send-Q Local Address           Foreign Address         State       PID/Program name\n\
             tcp        0      0 127.0.0.1:8788          0.0.0.0:*               LISTEN      6344/python3\n\
             tcp        1      0 127.0.0.1:45270         127.0.0.1:8788          CLOSE_WAIT  6396/python3\n\
             tcp        0      0 127.0.0.1:8788          127.0.0.1:45270         FIN_WAIT2   -\n\
             tcp6       0      0 :::8080                 :::*                    LISTEN      6344/python3\n\
             udp        0      0 0.0.0.0:68              0.0.0.0:*                           1/init\n\
             Active UNIX domain sockets (w/o servers)\n\
             unix  3      [ ]         STREAM     CONNECTED     12345  1/init\n",
        );
        assert_eq!(p.tool, Some(Tool::Netstat));
        assert!(p.skipped.is_empty(), "{:?}", p.skipped);
        let got: Vec<(TcpState, String, String, Option<u32>)> = p
            .sockets
            .iter()
            .map(|s| {
                (
                    s.state,
                    s.local.to_string(),
                    s.remote.to_string(),
                    s.process.as_ref().and_then(|p| p.pid),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    TcpState::Listen,
                    "127.0.0.1:8788".into(),
                    "*:*".into(),
                    Some(6344)
                ),
                (
                    TcpState::CloseWait,
                    "127.0.0.1:45270".into(),
                    "127.0.0.1:8788".into(),
                    Some(6396)
                ),
                (
                    TcpState::FinWait2,
                    "127.0.0.1:8788".into(),
                    "127.0.0.1:45270".into(),
                    None
                ),
                (TcpState::Listen, "*:8080".into(), "*:*".into(), Some(6344)),
            ]
        );
        assert_eq!(p.sockets[1].recv_q, Some(1));
        assert_eq!(p.sockets[1].line, 4);
    }

    #[test]
    fn ss_with_timer_info_and_users() {
        let p = parse(
            "State      Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess\n\
             CLOSE-WAIT 1      0          10.77.0.1:34506    10.77.0.2:8788 users:((\"java\",pid=77,fd=12),(\"java\",pid=77,fd=13))\n\
             \t ts sack bbr wscale:10,10 rto:204 rtt:0.048/0.027\n\
             FIN-WAIT-2 0      0          10.77.0.2:8788    10.77.0.1:34656 timer:(timewait,58sec,0)\n\
             \t\n\
             ESTAB      0      0      [::ffff:127.0.0.1]:8080  [::ffff:127.0.0.1]:60908\n",
        );
        assert_eq!(p.tool, Some(Tool::Ss));
        assert_eq!(p.sockets.len(), 3);
        let java = p.sockets[0].process.as_ref().expect("process");
        assert_eq!((java.name.as_deref(), java.pid), (Some("java"), Some(77)));
        assert_eq!(p.sockets[1].state, TcpState::FinWait2);
        assert_eq!(p.sockets[1].process, None);
        assert_eq!(p.sockets[2].local.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn ss_all_protocols_has_a_netid_column() {
        let p = parse(
            "Netid State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n\
             udp   UNCONN 0      0      0.0.0.0:68 0.0.0.0:*\n\
             tcp   ESTAB  0      0      10.0.0.5:51000 10.0.0.9:443\n\
             u_str ESTAB  0      0      * 12345 * 12346\n",
        );
        assert_eq!(p.sockets.len(), 1);
        assert_eq!(p.sockets[0].remote.to_string(), "10.0.0.9:443");
        assert!(p.skipped.is_empty(), "{:?}", p.skipped);
    }

    #[test]
    fn ss_state_filter_prints_no_state_column() {
        let text = "Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess\n\
                    1      0          127.0.0.1:49156    127.0.0.1:8788 users:((\"python3\",pid=2819,fd=3))\n\
                    1      0          127.0.0.1:49158    127.0.0.1:8788\n";
        let p = parse(text);
        assert!(p.sockets.is_empty());
        assert_eq!(p.stateless, 2);
        let p = parse_in_state(text, Some(TcpState::CloseWait));
        assert_eq!(p.stateless, 0);
        assert_eq!(p.tool, Some(Tool::Ss));
        let got: Vec<String> = p
            .sockets
            .iter()
            .map(|s| format!("{} {} {} {:?}", s.state, s.local, s.remote, s.recv_q))
            .collect();
        assert_eq!(
            got,
            [
                "CLOSE_WAIT 127.0.0.1:49156 127.0.0.1:8788 Some(1)",
                "CLOSE_WAIT 127.0.0.1:49158 127.0.0.1:8788 Some(1)"
            ]
        );
        assert_eq!(
            p.sockets[0].process.as_ref().and_then(|p| p.pid),
            Some(2819)
        );
    }

    #[test]
    fn ss_all_protocols_state_filter_has_netid_and_no_state() {
        let text = "Netid Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n\
                    tcp   1      0      10.0.0.5:51000 10.0.0.9:443\n";
        assert_eq!(parse(text).stateless, 1);
        let p = parse_in_state(text, Some(TcpState::CloseWait));
        assert_eq!(p.sockets.len(), 1);
        assert_eq!(p.sockets[0].state, TcpState::CloseWait);
        // A netstat line keeps its own state whatever the filter says.
        let p = parse_in_state(
            "tcp 0 0 10.0.0.5:51000 10.0.0.9:443 ESTABLISHED\n",
            Some(TcpState::CloseWait),
        );
        assert_eq!(p.sockets[0].state, TcpState::Established);
    }

    #[test]
    fn windows_and_macos_netstat() {
        let p = parse(
            "Active Connections\n\n  Proto  Local Address          Foreign Address        State           PID\n\
             \x20 TCP    0.0.0.0:135            0.0.0.0:0              LISTENING       1024\n\
             \x20 TCP    10.0.0.5:52100         10.0.0.9:443           CLOSE_WAIT      4242\n\
             tcp4       0      0  10.0.0.5.52101         10.0.0.9.443           CLOSE_WAIT\n\
             tcp46      0      0  *.8080                 *.*                    LISTEN\n",
        );
        let got: Vec<String> = p
            .sockets
            .iter()
            .map(|s| format!("{} {} {}", s.state, s.local, s.remote))
            .collect();
        assert_eq!(
            got,
            [
                "LISTEN *:135 *:0",
                "CLOSE_WAIT 10.0.0.5:52100 10.0.0.9:443",
                "CLOSE_WAIT 10.0.0.5:52101 10.0.0.9:443",
                "LISTEN *:8080 *:*"
            ]
        );
        assert_eq!(
            p.sockets[1].process.as_ref().and_then(|p| p.pid),
            Some(4242)
        );
    }

    #[test]
    fn unreadable_socket_lines_are_kept_with_the_reason() {
        let p = parse("tcp 0 0 10.0.0.1:80 nonsense!!:x ESTABLISHED\nESTAB 0\n");
        assert!(p.sockets.is_empty());
        assert_eq!(p.skipped.len(), 2);
        assert_eq!(p.skipped[0].line, 1);
        assert!(p.skipped[0].why.contains("nonsense!!:x"), "{:?}", p.skipped);
        assert!(p.skipped[1].why.contains("too few columns"));
    }
}
