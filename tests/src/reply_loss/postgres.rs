//! The PostgreSQL side of the reply-loss proxy: reads frontend messages (simple Query; Parse, Bind
//! and Sync of the extended protocol), answers SSLRequest with "no TLS", and counts ReadyForQuery
//! so it knows where the chosen execution's replies start and that the server has finished it.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::Relay;

const SSL_REQUEST: i32 = 80_877_103;
const GSSENC_REQUEST: i32 = 80_877_104;
const CANCEL_REQUEST: i32 = 80_877_102;

/// Relays one client connection until either side closes or the chosen reply is lost.
pub(super) async fn relay(relay: Relay<'_>, mut client: TcpStream, mut server: TcpStream) {
    match startup(&relay, &mut client, &mut server).await {
        Ok(Startup::Session) => {}
        Ok(Startup::Cancel) => {
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            return;
        }
        Err(_) => return,
    }
    // How many ReadyForQuery the client is owed before the chosen execution's replies begin.
    let lose_after = Arc::new(AtomicU64::new(u64::MAX));
    let (client_read, mut client_write) = client.into_split();
    let (server_read, mut server_write) = server.into_split();
    let mut client_read = BufReader::new(client_read);
    let mut server_read = BufReader::new(server_read);
    let cut_at_once = tokio::select! {
        forwarded = requests(relay, &mut client_read, &mut server_write, &lose_after) => {
            matches!(forwarded, Ok(Forwarded::CutClient))
        }
        _ = replies(relay, &mut server_read, &mut client_write, &lose_after) => false,
    };
    if cut_at_once {
        // The client sees its connection end now; the server goes on with the statement, whose
        // replies are read and dropped up to its ReadyForQuery.
        drop((client_read, client_write));
        while let Ok(Some((tag, _))) = read_message(&mut server_read).await {
            if tag == b'Z' {
                relay.reply_lost();
                break;
            }
        }
    }
}

/// How the client-to-server side ended.
enum Forwarded {
    /// The client closed, or the chosen execution's reply is being lost.
    Ended,
    /// The chosen statement was forwarded and the client is to be cut at once.
    CutClient,
}

enum Startup {
    Session,
    Cancel,
}

/// Answers TLS requests with 'N' and forwards the startup message.
async fn startup(
    relay: &Relay<'_>,
    client: &mut TcpStream,
    server: &mut TcpStream,
) -> io::Result<Startup> {
    loop {
        let length = client.read_i32().await?;
        let mut body = vec![0; usize::try_from(length - 4).map_err(invalid)?];
        client.read_exact(&mut body).await?;
        let code = i32::from_be_bytes(body[..4].try_into().map_err(invalid)?);
        if code == SSL_REQUEST || code == GSSENC_REQUEST {
            relay.trace(format_args!("SSLRequest/GSSENCRequest answered 'N'"));
            client.write_all(b"N").await?;
            continue;
        }
        server.write_all(&length.to_be_bytes()).await?;
        server.write_all(&body).await?;
        return Ok(if code == CANCEL_REQUEST {
            Startup::Cancel
        } else {
            relay.trace(format_args!("StartupMessage"));
            Startup::Session
        });
    }
}

/// Client to server: records executions, and after the chosen one's Sync (or simple Query) holds
/// everything else back.
async fn requests(
    relay: Relay<'_>,
    client: &mut (impl AsyncRead + Unpin),
    server: &mut (impl AsyncWrite + Unpin),
    lose_after: &AtomicU64,
) -> io::Result<Forwarded> {
    let mut statements: HashMap<String, String> = HashMap::new();
    // The startup phase ends with one ReadyForQuery; each Query and Sync earns one more.
    let mut ready_for_query_owed: u64 = 1;
    let mut chosen_pending_sync = false;
    while let Some((tag, body)) = read_message(client).await? {
        let mut hold_after = false;
        match tag {
            b'Q' => {
                let text = c_str(&body, 0).0;
                relay.trace(format_args!("Query {text:?}"));
                if !chosen_pending_sync && relay.observe(false, &text, Vec::new()) {
                    lose_after.store(ready_for_query_owed, Ordering::SeqCst);
                    hold_after = true;
                }
                ready_for_query_owed += 1;
            }
            b'P' => {
                let (name, at) = c_str(&body, 0);
                let text = c_str(&body, at).0;
                relay.trace(format_args!("Parse {name:?} {text:?}"));
                statements.insert(name, text);
            }
            b'B' => {
                let (portal, statement, params) = bind(&body).ok_or_else(|| invalid("Bind"))?;
                let text = statements.get(&statement).cloned().unwrap_or_default();
                relay.trace(format_args!(
                    "Bind portal {portal:?} statement {statement:?} ({} params)",
                    params.len()
                ));
                if !chosen_pending_sync && relay.observe(true, &text, params) {
                    lose_after.store(ready_for_query_owed, Ordering::SeqCst);
                    chosen_pending_sync = true;
                }
            }
            b'S' => {
                relay.trace(format_args!("Sync"));
                ready_for_query_owed += 1;
                hold_after = chosen_pending_sync;
            }
            other => relay.trace(format_args!(
                "{:?} ({} bytes)",
                char::from(other),
                body.len()
            )),
        }
        write_message(server, tag, &body).await?;
        if hold_after {
            if relay.cuts_client_at_once() {
                return Ok(Forwarded::CutClient);
            }
            // The server executes what it has; the client waits for a reply that never comes.
            std::future::pending::<()>().await;
        }
    }
    Ok(Forwarded::Ended)
}

/// Server to client: forwards replies until the chosen execution's, which are read and dropped
/// up to its ReadyForQuery (the server has then finished it), and then ends the connection.
async fn replies(
    relay: Relay<'_>,
    server: &mut (impl AsyncRead + Unpin),
    client: &mut (impl AsyncWrite + Unpin),
    lose_after: &AtomicU64,
) -> io::Result<()> {
    let mut ready_for_query_seen: u64 = 0;
    while let Some((tag, body)) = read_message(server).await? {
        if ready_for_query_seen >= lose_after.load(Ordering::SeqCst) {
            if tag == b'Z' {
                relay.reply_lost();
                return Ok(());
            }
            continue;
        }
        if tag == b'Z' {
            ready_for_query_seen += 1;
        }
        write_message(client, tag, &body).await?;
    }
    Ok(())
}

/// One typed message (`None` at a clean end of stream).
async fn read_message(stream: &mut (impl AsyncRead + Unpin)) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut tag = [0u8; 1];
    if stream.read(&mut tag).await? == 0 {
        return Ok(None);
    }
    let length = stream.read_i32().await?;
    let mut body = vec![0; usize::try_from(length - 4).map_err(invalid)?];
    stream.read_exact(&mut body).await?;
    Ok(Some((tag[0], body)))
}

async fn write_message(
    stream: &mut (impl AsyncWrite + Unpin),
    tag: u8,
    body: &[u8],
) -> io::Result<()> {
    let length = i32::try_from(body.len() + 4).map_err(invalid)?;
    let mut message = Vec::with_capacity(body.len() + 5);
    message.push(tag);
    message.extend_from_slice(&length.to_be_bytes());
    message.extend_from_slice(body);
    stream.write_all(&message).await
}

/// The NUL-terminated string at `at` and the offset after it.
fn c_str(body: &[u8], at: usize) -> (String, usize) {
    let rest = body.get(at..).unwrap_or_default();
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    (
        String::from_utf8_lossy(&rest[..end]).into_owned(),
        at + end + 1,
    )
}

type BoundParams = Vec<Option<Vec<u8>>>;

/// A Bind's portal, statement name and parameter values.
fn bind(body: &[u8]) -> Option<(String, String, BoundParams)> {
    let (portal, at) = c_str(body, 0);
    let (statement, mut at) = c_str(body, at);
    let i16_at = |at: &mut usize| -> Option<i16> {
        let value = i16::from_be_bytes(body.get(*at..*at + 2)?.try_into().ok()?);
        *at += 2;
        Some(value)
    };
    let formats = i16_at(&mut at)?;
    at += 2 * usize::try_from(formats).ok()?;
    let count = i16_at(&mut at)?;
    let mut params = Vec::new();
    for _ in 0..count {
        let length = i32::from_be_bytes(body.get(at..at + 4)?.try_into().ok()?);
        at += 4;
        if length < 0 {
            params.push(None);
            continue;
        }
        let length = usize::try_from(length).ok()?;
        params.push(Some(body.get(at..at + length)?.to_vec()));
        at += length;
    }
    Some((portal, statement, params))
}

fn invalid(what: impl std::fmt::Debug) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("bad PostgreSQL message: {what:?}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bind_yields_its_statement_and_values() {
        let mut body = b"\0sqlx_s_1\0".to_vec();
        body.extend_from_slice(&1i16.to_be_bytes());
        body.extend_from_slice(&1i16.to_be_bytes());
        body.extend_from_slice(&2i16.to_be_bytes());
        body.extend_from_slice(&7i32.to_be_bytes());
        body.extend_from_slice(b"APPLIED");
        body.extend_from_slice(&(-1i32).to_be_bytes());
        body.extend_from_slice(&0i16.to_be_bytes());
        let (portal, statement, params) = bind(&body).expect("a valid Bind");
        assert_eq!(portal, "");
        assert_eq!(statement, "sqlx_s_1");
        assert_eq!(params, vec![Some(b"APPLIED".to_vec()), None]);
    }
}
