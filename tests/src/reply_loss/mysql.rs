//! The MySQL/MariaDB side of the reply-loss proxy: clears CLIENT_SSL from the server's greeting,
//! reads commands (COM_QUERY, COM_STMT_PREPARE, COM_STMT_EXECUTE with its bound values), learns
//! statement ids from PREPARE_OK, and drops the first reply packet of the chosen command (the
//! server has then executed it) before ending the connection.
//!
//! The command phase is half-duplex (a client reads a whole reply before its next command), so
//! the first server packet after a command that expects a reply starts that command's reply.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::Mutex;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::Relay;

const CLIENT_SSL: u16 = 0x0800;
const COM_QUIT: u8 = 0x01;
const COM_QUERY: u8 = 0x03;
const COM_STMT_PREPARE: u8 = 0x16;
const COM_STMT_EXECUTE: u8 = 0x17;
const COM_STMT_SEND_LONG_DATA: u8 = 0x18;
const COM_STMT_CLOSE: u8 = 0x19;

/// A command awaiting its reply.
enum Awaiting {
    Prepare(String),
    Chosen,
    Other,
}

struct Statement {
    text: String,
    param_count: usize,
    /// The parameter types of the last execute that sent them.
    types: Vec<u8>,
}

#[derive(Default)]
struct Session {
    awaiting: VecDeque<Awaiting>,
    statements: HashMap<u32, Statement>,
}

/// Relays one client connection until either side closes or the chosen reply is lost.
pub(super) async fn relay(relay: Relay<'_>, client: TcpStream, server: TcpStream) {
    let session = Mutex::new(Session::default());
    let (client_read, mut client_write) = client.into_split();
    let (server_read, mut server_write) = server.into_split();
    let mut client_read = BufReader::new(client_read);
    let mut server_read = BufReader::new(server_read);
    tokio::select! {
        _ = requests(relay, &mut client_read, &mut server_write, &session) => {}
        _ = replies(relay, &mut server_read, &mut client_write, &session) => {}
    }
}

fn lock(session: &Mutex<Session>) -> std::sync::MutexGuard<'_, Session> {
    session.lock().unwrap_or_else(|e| e.into_inner())
}

/// Client to server: records executions; after the chosen command holds everything else back.
async fn requests(
    relay: Relay<'_>,
    client: &mut (impl AsyncRead + Unpin),
    server: &mut (impl AsyncWrite + Unpin),
    session: &Mutex<Session>,
) -> io::Result<()> {
    while let Some((sequence, payload)) = read_packet(client).await? {
        let mut chosen = false;
        // A command starts a new sequence; handshake responses continue the server's.
        if sequence == 0 && !payload.is_empty() {
            let text = || String::from_utf8_lossy(&payload[1..]).into_owned();
            let awaiting = match payload[0] {
                COM_QUERY => {
                    let text = text();
                    relay.trace(format_args!("COM_QUERY {text:?}"));
                    chosen = relay.observe(false, &text, Vec::new());
                    Some(if chosen {
                        Awaiting::Chosen
                    } else {
                        Awaiting::Other
                    })
                }
                COM_STMT_PREPARE => {
                    let text = text();
                    relay.trace(format_args!("COM_STMT_PREPARE {text:?}"));
                    Some(Awaiting::Prepare(text))
                }
                COM_STMT_EXECUTE => {
                    let (id, text, params) = execute(&payload, &mut lock(session));
                    relay.trace(format_args!(
                        "COM_STMT_EXECUTE id {id} ({} params)",
                        params.len()
                    ));
                    chosen = relay.observe(true, &text, params);
                    Some(if chosen {
                        Awaiting::Chosen
                    } else {
                        Awaiting::Other
                    })
                }
                COM_STMT_CLOSE | COM_STMT_SEND_LONG_DATA | COM_QUIT => {
                    relay.trace(format_args!("command 0x{:02x} (no reply)", payload[0]));
                    None
                }
                other => {
                    relay.trace(format_args!("command 0x{other:02x}"));
                    Some(Awaiting::Other)
                }
            };
            if let Some(awaiting) = awaiting {
                lock(session).awaiting.push_back(awaiting);
            }
        }
        write_packet(server, sequence, &payload).await?;
        if chosen {
            // The server executes it; the client waits for a reply that never comes.
            std::future::pending::<()>().await;
        }
    }
    Ok(())
}

/// Server to client: patches the greeting, learns statement ids, and drops the chosen command's
/// reply.
async fn replies(
    relay: Relay<'_>,
    server: &mut (impl AsyncRead + Unpin),
    client: &mut (impl AsyncWrite + Unpin),
    session: &Mutex<Session>,
) -> io::Result<()> {
    let mut greeted = false;
    while let Some((sequence, mut payload)) = read_packet(server).await? {
        if !greeted {
            greeted = true;
            clear_ssl_capability(&mut payload);
        }
        let starts_reply = lock(session).awaiting.pop_front();
        match starts_reply {
            Some(Awaiting::Chosen) => {
                relay.reply_lost();
                return Ok(());
            }
            Some(Awaiting::Prepare(text)) => prepared(&payload, text, &mut lock(session)),
            Some(Awaiting::Other) | None => {}
        }
        write_packet(client, sequence, &payload).await?;
    }
    Ok(())
}

/// Removes CLIENT_SSL from a protocol-10 greeting, so a client that prefers TLS goes without.
fn clear_ssl_capability(greeting: &mut [u8]) {
    if greeting.first() != Some(&10) {
        return;
    }
    let Some(version_end) = greeting[1..].iter().position(|&b| b == 0) else {
        return;
    };
    // Version, NUL, connection id (4), auth data part 1 (8), filler (1), then the flags.
    let flags_at = 1 + version_end + 1 + 4 + 8 + 1;
    if let Some(flags) = greeting.get_mut(flags_at..flags_at + 2) {
        let value = u16::from_le_bytes([flags[0], flags[1]]) & !CLIENT_SSL;
        flags.copy_from_slice(&value.to_le_bytes());
    }
}

/// Records the statement of a PREPARE_OK reply.
fn prepared(reply: &[u8], text: String, session: &mut Session) {
    if reply.first() != Some(&0) || reply.len() < 9 {
        return;
    }
    let id = u32::from_le_bytes([reply[1], reply[2], reply[3], reply[4]]);
    let param_count = usize::from(u16::from_le_bytes([reply[7], reply[8]]));
    session.statements.insert(
        id,
        Statement {
            text,
            param_count,
            types: Vec::new(),
        },
    );
}

/// A COM_STMT_EXECUTE's statement id, text and bound values (as many as could be decoded).
fn execute(payload: &[u8], session: &mut Session) -> (u32, String, Vec<Option<Vec<u8>>>) {
    let Some(id) = payload
        .get(1..5)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    else {
        return (0, String::new(), Vec::new());
    };
    let Some(statement) = session.statements.get_mut(&id) else {
        return (id, String::new(), Vec::new());
    };
    let params = bound_values(payload, statement).unwrap_or_default();
    (id, statement.text.clone(), params)
}

fn bound_values(payload: &[u8], statement: &mut Statement) -> Option<Vec<Option<Vec<u8>>>> {
    let count = statement.param_count;
    if count == 0 {
        return Some(Vec::new());
    }
    // Command, id (4), flags (1), iteration count (4), then the NULL bitmap.
    let mut at = 10;
    let bitmap = payload.get(at..at + count.div_ceil(8))?.to_vec();
    at += bitmap.len();
    if *payload.get(at)? == 1 {
        let types = payload.get(at + 1..at + 1 + 2 * count)?;
        statement.types = types.chunks(2).map(|t| t[0]).collect();
        at += 2 * count;
    }
    at += 1;
    let mut values = Vec::with_capacity(count);
    for (i, &kind) in statement.types.iter().enumerate().take(count) {
        if bitmap[i / 8] & (1 << (i % 8)) != 0 {
            values.push(None);
            continue;
        }
        let (start, length) = match kind {
            0x06 => (at, 0),
            0x01 => (at, 1),
            0x02 | 0x0d => (at, 2),
            0x03 | 0x04 | 0x09 => (at, 4),
            0x05 | 0x08 => (at, 8),
            0x07 | 0x0a | 0x0b | 0x0c => (at + 1, usize::from(*payload.get(at)?)),
            _ => length_encoded(payload, at)?,
        };
        values.push(Some(payload.get(start..start + length)?.to_vec()));
        at = start + length;
    }
    Some(values)
}

/// The start and length of a length-encoded string at `at`.
fn length_encoded(payload: &[u8], at: usize) -> Option<(usize, usize)> {
    let first = *payload.get(at)?;
    let (width, length) = match first {
        0xfc => (
            2,
            u64::from(u16::from_le_bytes(
                payload.get(at + 1..at + 3)?.try_into().ok()?,
            )),
        ),
        0xfd => {
            let b = payload.get(at + 1..at + 4)?;
            (
                3,
                u64::from(b[0]) | u64::from(b[1]) << 8 | u64::from(b[2]) << 16,
            )
        }
        0xfe => (
            8,
            u64::from_le_bytes(payload.get(at + 1..at + 9)?.try_into().ok()?),
        ),
        small => (0, u64::from(small)),
    };
    Some((at + 1 + width, usize::try_from(length).ok()?))
}

/// One packet (`None` at a clean end of stream).
async fn read_packet(stream: &mut (impl AsyncRead + Unpin)) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut header = [0u8; 4];
    match stream.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let length =
        usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
    let mut payload = vec![0; length];
    stream.read_exact(&mut payload).await?;
    Ok(Some((header[3], payload)))
}

async fn write_packet(
    stream: &mut (impl AsyncWrite + Unpin),
    sequence: u8,
    payload: &[u8],
) -> io::Result<()> {
    let length = u32::try_from(payload.len()).expect("a packet read is under 16 MiB");
    let mut packet = Vec::with_capacity(payload.len() + 4);
    packet.extend_from_slice(&length.to_le_bytes()[..3]);
    packet.push(sequence);
    packet.extend_from_slice(payload);
    stream.write_all(&packet).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_execute_yields_its_bound_values() {
        let mut statement = Statement {
            text: "INSERT INTO t VALUES (?, ?, ?)".to_owned(),
            param_count: 3,
            types: Vec::new(),
        };
        let mut payload = vec![COM_STMT_EXECUTE, 7, 0, 0, 0, 0, 1, 0, 0, 0];
        payload.push(0b100); // the third value is NULL
        payload.push(1);
        payload.extend_from_slice(&[0xfd, 0, 0x08, 0, 0x0f, 0]);
        payload.push(7);
        payload.extend_from_slice(b"APPLIED");
        payload.extend_from_slice(&42u64.to_le_bytes());
        let values = bound_values(&payload, &mut statement).expect("a valid execute");
        assert_eq!(
            values,
            vec![
                Some(b"APPLIED".to_vec()),
                Some(42u64.to_le_bytes().to_vec()),
                None
            ]
        );
    }
}
