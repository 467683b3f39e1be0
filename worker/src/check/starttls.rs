//! Upgrading a plaintext session to TLS before the TLS check's handshake.
//! SMTP (RFC 3207): the greeting (220), EHLO, STARTTLS among the
//! capabilities, STARTTLS, 220. Anything else from the server is a
//! PROTOCOL_ERROR naming what it said.

use monitor_proto::v1::CheckOutcome;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

use super::Failure;

/// Longest reply line read (RFC 5321 allows 512; servers write longer).
const MAX_LINE_BYTES: usize = 4096;
/// Most lines in one multi-line reply (EHLO lists one capability a line).
const MAX_REPLY_LINES: usize = 100;

/// One SMTP reply: its code and the text of each line.
#[derive(Debug, PartialEq, Eq)]
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    /// The reply as the server wrote it, on one line, for messages.
    fn shown(&self) -> String {
        format!("{} {}", self.code, self.lines.join(" / "))
            .trim_end()
            .to_owned()
    }
}

/// Brings an SMTP session on `stream` to the point where the TLS
/// handshake begins.
pub(super) async fn smtp(stream: &mut TcpStream) -> Result<(), Failure> {
    let local = stream.local_addr().ok();
    let mut reader = BufReader::new(stream);
    let greeting = read_reply(&mut reader, "greeting").await?;
    if greeting.code != 220 {
        return Err(refused(format!("the SMTP server greets with {}", greeting.shown())));
    }
    // The address literal of our end (RFC 5321 4.1.3): no name to make up.
    let ehlo = match local.map(|address| address.ip()) {
        Some(std::net::IpAddr::V4(address)) => format!("EHLO [{address}]\r\n"),
        Some(std::net::IpAddr::V6(address)) => format!("EHLO [IPv6:{address}]\r\n"),
        None => "EHLO [127.0.0.1]\r\n".to_owned(),
    };
    send(&mut reader, ehlo.as_bytes()).await?;
    let capabilities = read_reply(&mut reader, "EHLO").await?;
    if capabilities.code != 250 {
        return Err(refused(format!(
            "the SMTP server answers EHLO with {}",
            capabilities.shown()
        )));
    }
    if !offers_starttls(&capabilities) {
        return Err(refused(format!(
            "the SMTP server does not offer STARTTLS (EHLO: {})",
            capabilities.shown()
        )));
    }
    send(&mut reader, b"STARTTLS\r\n").await?;
    let ready = read_reply(&mut reader, "STARTTLS").await?;
    if ready.code != 220 {
        return Err(refused(format!(
            "the SMTP server answers STARTTLS with {}",
            ready.shown()
        )));
    }
    // Bytes after the answer would be taken for the server's TLS (the
    // STARTTLS injection flaw): a correct server sends none.
    if !reader.buffer().is_empty() {
        return Err(refused(
            "the SMTP server sent more after its STARTTLS answer".to_owned(),
        ));
    }
    Ok(())
}

fn offers_starttls(reply: &Reply) -> bool {
    // The first line is the server's name, the rest capabilities.
    reply.lines.iter().skip(1).any(|line| {
        line.split_whitespace()
            .next()
            .is_some_and(|keyword| keyword.eq_ignore_ascii_case("STARTTLS"))
    })
}

fn refused(message: String) -> Failure {
    Failure::new(CheckOutcome::ProtocolError, message)
}

async fn send(reader: &mut BufReader<&mut TcpStream>, line: &[u8]) -> Result<(), Failure> {
    reader
        .get_mut()
        .write_all(line)
        .await
        .map_err(|error| refused(format!("the SMTP session broke: {error}")))
}

/// Reads one (possibly multi-line) reply: `250-…` lines continue it, the
/// `250 …` line ends it.
async fn read_reply(reader: &mut BufReader<&mut TcpStream>, answering: &str) -> Result<Reply, Failure> {
    let mut lines = Vec::new();
    let mut code = None;
    loop {
        let mut raw = Vec::new();
        let read = (&mut *reader)
            .take(MAX_LINE_BYTES as u64)
            .read_until(b'\n', &mut raw)
            .await
            .map_err(|error| refused(format!("the SMTP session broke: {error}")))?;
        if read == 0 {
            return Err(refused(format!(
                "the server closed the connection instead of answering the {answering}"
            )));
        }
        if !raw.ends_with(b"\n") {
            return Err(refused(format!(
                "not an SMTP server: a reply line longer than {MAX_LINE_BYTES} bytes"
            )));
        }
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim_end_matches(['\r', '\n']);
        let (this_code, last, text) = parse_line(line).ok_or_else(|| {
            refused(format!(
                "not an SMTP server: it answered the {answering} with {:?}",
                clip(line)
            ))
        })?;
        if *code.get_or_insert(this_code) != this_code {
            return Err(refused(format!(
                "not an SMTP server: reply codes change within a reply ({line:?})"
            )));
        }
        lines.push(text.to_owned());
        if last {
            return Ok(Reply { code: this_code, lines });
        }
        if lines.len() >= MAX_REPLY_LINES {
            return Err(refused(format!(
                "the {answering} reply has more than {MAX_REPLY_LINES} lines"
            )));
        }
    }
}

/// `250-text` (more follows), `250 text` or `250` (the last line).
fn parse_line(line: &str) -> Option<(u16, bool, &str)> {
    let digits = line.get(..3)?;
    if !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let code = digits.parse().ok()?;
    match line.as_bytes().get(3) {
        None => Some((code, true, "")),
        Some(b' ') => Some((code, true, &line[4..])),
        Some(b'-') => Some((code, false, &line[4..])),
        Some(_) => None,
    }
}

fn clip(line: &str) -> &str {
    match line.char_indices().nth(80) {
        Some((end, _)) => &line[..end],
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt as _;
    use tokio::net::TcpListener;

    use super::*;

    #[test]
    fn reply_lines_parse() {
        assert_eq!(parse_line("250-SIZE 100"), Some((250, false, "SIZE 100")));
        assert_eq!(parse_line("250 STARTTLS"), Some((250, true, "STARTTLS")));
        assert_eq!(parse_line("220"), Some((220, true, "")));
        assert_eq!(parse_line("HTTP/1.1 400 Bad Request"), None);
        assert_eq!(parse_line("22"), None);
        assert_eq!(parse_line("220x"), None);
    }

    #[test]
    fn starttls_is_found_among_the_capabilities_only() {
        let reply = |lines: &[&str]| Reply {
            code: 250,
            lines: lines.iter().map(ToString::to_string).collect(),
        };
        assert!(offers_starttls(&reply(&["mail.test", "SIZE 100", "starttls"])));
        assert!(!offers_starttls(&reply(&["STARTTLS.test", "SIZE 100"])));
        assert!(!offers_starttls(&reply(&["mail.test", "AUTH PLAIN"])));
    }

    /// A server that writes `script`'s answers, one per line it reads
    /// (the first before reading anything), then closes.
    async fn scripted(script: &'static [&'static str]) -> TcpStream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            for (i, answer) in script.iter().enumerate() {
                if i > 0 {
                    let mut line = Vec::new();
                    let mut byte = [0_u8; 1];
                    while !line.ends_with(b"\n") {
                        if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                            return;
                        }
                        line.push(byte[0]);
                    }
                }
                if stream.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
        TcpStream::connect(address).await.unwrap()
    }

    #[tokio::test]
    async fn a_full_upgrade_succeeds() {
        let mut stream = scripted(&[
            "220 mail.test ESMTP\r\n",
            "250-mail.test\r\n250-SIZE 1000\r\n250 STARTTLS\r\n",
            "220 go ahead\r\n",
        ])
        .await;
        smtp(&mut stream).await.unwrap();
    }

    #[tokio::test]
    async fn servers_that_do_not_upgrade_are_protocol_errors() {
        for (script, message) in [
            (
                &["554 no service\r\n"][..],
                "the SMTP server greets with 554 no service",
            ),
            (
                &["220 mail.test\r\n", "250-mail.test\r\n250 SIZE 1000\r\n"],
                "the SMTP server does not offer STARTTLS (EHLO: 250 mail.test / SIZE 1000)",
            ),
            (
                &[
                    "220 mail.test\r\n",
                    "250-mail.test\r\n250 STARTTLS\r\n",
                    "454 not now\r\n",
                ],
                "the SMTP server answers STARTTLS with 454 not now",
            ),
            (
                &["HTTP/1.1 400 Bad Request\r\n"],
                "not an SMTP server: it answered the greeting with \"HTTP/1.1 400 Bad Request\"",
            ),
            (
                &["220 mail.test\r\n"],
                "the server closed the connection instead of answering the EHLO",
            ),
            (
                &[
                    "220 mail.test\r\n",
                    "250-mail.test\r\n250 STARTTLS\r\n",
                    "220 go\r\nextra",
                ],
                "the SMTP server sent more after its STARTTLS answer",
            ),
        ] {
            let mut stream = scripted(script).await;
            let failure = smtp(&mut stream).await.unwrap_err();
            assert_eq!(failure.outcome, CheckOutcome::ProtocolError);
            assert_eq!(failure.error, message);
        }
    }
}
