//! The SOCKS5 proxy listener (`--socks5-listen`, RFC 1928): CONNECT for
//! real, to any address or name, so tests reach the mock's own ports (or a
//! closed one) through it. With `--socks5-user` it requires that user name
//! and password (RFC 1929); without, no authentication.
//!
//! Replies follow the outcome of the connect: succeeded, connection
//! refused, host or network unreachable, TTL expired (the connect timed
//! out), host unreachable for a name that does not resolve, general failure
//! otherwise; command not supported for BIND and UDP ASSOCIATE, address
//! type not supported for an unknown ATYP. It is an open proxy: bind it to
//! loopback.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

const VERSION: u8 = 5;
const METHOD_NONE: u8 = 0x00;
const METHOD_PASSWORD: u8 = 0x02;
const NO_ACCEPTABLE_METHOD: u8 = 0xff;
const COMMAND_CONNECT: u8 = 1;
const ATYP_IPV4: u8 = 1;
const ATYP_DOMAIN: u8 = 3;
const ATYP_IPV6: u8 = 4;

/// RFC 1928 6 reply codes the mock sends.
const SUCCEEDED: u8 = 0;
const GENERAL_FAILURE: u8 = 1;
const NETWORK_UNREACHABLE: u8 = 3;
const HOST_UNREACHABLE: u8 = 4;
const CONNECTION_REFUSED: u8 = 5;
const TTL_EXPIRED: u8 = 6;
const COMMAND_NOT_SUPPORTED: u8 = 7;
const ADDRESS_TYPE_NOT_SUPPORTED: u8 = 8;

/// Longest a whole handshake, or the connect to the target, may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The login the proxy requires (`--socks5-user`, `--socks5-password`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socks5Login {
    pub user: String,
    pub password: String,
}

/// Proxies connections on `listener` until `shutdown` is cancelled;
/// tunnels still open then are dropped.
pub(crate) async fn serve(listener: TcpListener, login: Option<Socks5Login>, shutdown: CancellationToken) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let login = login.clone();
                    connections.spawn(async move {
                        if let Err(error) = proxy(stream, login.as_ref()).await {
                            debug!(%peer, %error, "SOCKS5 connection ended with an error");
                        }
                    });
                }
                Err(error) => {
                    warn!(%error, "accepting a SOCKS5 connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = connections.join_next() => {}
        }
    }
}

/// One client: the handshake (bounded in time), then the tunnel.
async fn proxy(mut client: TcpStream, login: Option<&Socks5Login>) -> io::Result<()> {
    let target = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&mut client, login))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "handshake timed out"))??;
    let Some(mut target) = target else {
        return Ok(());
    };
    tokio::io::copy_bidirectional(&mut client, &mut target).await?;
    Ok(())
}

/// Method selection, the login, the request and the reply; the connected
/// target, or `None` when the client was refused (and told why).
async fn handshake(client: &mut TcpStream, login: Option<&Socks5Login>) -> io::Result<Option<TcpStream>> {
    let mut head = [0_u8; 2];
    client.read_exact(&mut head).await?;
    if head[0] != VERSION {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not SOCKS5"));
    }
    let mut methods = vec![0_u8; usize::from(head[1])];
    client.read_exact(&mut methods).await?;
    let wanted = if login.is_some() { METHOD_PASSWORD } else { METHOD_NONE };
    if !methods.contains(&wanted) {
        client.write_all(&[VERSION, NO_ACCEPTABLE_METHOD]).await?;
        return Ok(None);
    }
    client.write_all(&[VERSION, wanted]).await?;
    if let Some(login) = login
        && !logged_in(client, login).await?
    {
        return Ok(None);
    }

    let mut request = [0_u8; 4];
    client.read_exact(&mut request).await?;
    let [version, command, _reserved, atyp] = request;
    if version != VERSION {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "request is not SOCKS5"));
    }
    let destination = match atyp {
        ATYP_IPV4 => {
            let mut octets = [0_u8; 4];
            client.read_exact(&mut octets).await?;
            Destination::Ip(IpAddr::from(octets))
        }
        ATYP_IPV6 => {
            let mut octets = [0_u8; 16];
            client.read_exact(&mut octets).await?;
            Destination::Ip(IpAddr::from(octets))
        }
        ATYP_DOMAIN => {
            let mut length = [0_u8; 1];
            client.read_exact(&mut length).await?;
            let mut name = vec![0_u8; usize::from(length[0])];
            client.read_exact(&mut name).await?;
            Destination::Name(String::from_utf8_lossy(&name).into_owned())
        }
        _ => {
            reply(client, ADDRESS_TYPE_NOT_SUPPORTED, None).await?;
            return Ok(None);
        }
    };
    let mut port = [0_u8; 2];
    client.read_exact(&mut port).await?;
    let port = u16::from_be_bytes(port);
    if command != COMMAND_CONNECT {
        reply(client, COMMAND_NOT_SUPPORTED, None).await?;
        return Ok(None);
    }
    match destination.connect(port).await {
        Ok(target) => {
            reply(client, SUCCEEDED, target.local_addr().ok()).await?;
            Ok(Some(target))
        }
        Err(code) => {
            reply(client, code, None).await?;
            Ok(None)
        }
    }
}

/// RFC 1929: whether the client sent the required user name and password
/// (it is told either way).
async fn logged_in(client: &mut TcpStream, login: &Socks5Login) -> io::Result<bool> {
    let mut head = [0_u8; 2];
    client.read_exact(&mut head).await?;
    let mut user = vec![0_u8; usize::from(head[1])];
    client.read_exact(&mut user).await?;
    let mut length = [0_u8; 1];
    client.read_exact(&mut length).await?;
    let mut password = vec![0_u8; usize::from(length[0])];
    client.read_exact(&mut password).await?;
    let accepted = head[0] == 1 && user == login.user.as_bytes() && password == login.password.as_bytes();
    client.write_all(&[1, if accepted { 0 } else { 1 }]).await?;
    Ok(accepted)
}

enum Destination {
    Ip(IpAddr),
    Name(String),
}

impl Destination {
    /// Connects, or says which reply code the failure is.
    async fn connect(&self, port: u16) -> Result<TcpStream, u8> {
        let addresses: Vec<SocketAddr> = match self {
            Destination::Ip(address) => vec![SocketAddr::new(*address, port)],
            Destination::Name(name) => match tokio::net::lookup_host((name.as_str(), port)).await {
                Ok(addresses) => addresses.collect(),
                Err(_) => return Err(HOST_UNREACHABLE),
            },
        };
        let mut code = HOST_UNREACHABLE;
        for address in addresses {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(address)).await {
                Ok(Ok(stream)) => return Ok(stream),
                Ok(Err(error)) => code = reply_code(&error),
                Err(_) => code = TTL_EXPIRED,
            }
        }
        Err(code)
    }
}

fn reply_code(error: &io::Error) -> u8 {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => CONNECTION_REFUSED,
        io::ErrorKind::HostUnreachable => HOST_UNREACHABLE,
        io::ErrorKind::NetworkUnreachable => NETWORK_UNREACHABLE,
        io::ErrorKind::TimedOut => TTL_EXPIRED,
        _ => GENERAL_FAILURE,
    }
}

/// VER REP RSV ATYP BND.ADDR BND.PORT; the bound address is zeros on failure.
async fn reply(client: &mut TcpStream, code: u8, bound: Option<SocketAddr>) -> io::Result<()> {
    let bound = bound.unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0));
    let mut message = vec![VERSION, code, 0];
    match bound.ip() {
        IpAddr::V4(address) => {
            message.push(ATYP_IPV4);
            message.extend_from_slice(&address.octets());
        }
        IpAddr::V6(address) => {
            message.push(ATYP_IPV6);
            message.extend_from_slice(&Ipv6Addr::octets(&address));
        }
    }
    message.extend_from_slice(&bound.port().to_be_bytes());
    client.write_all(&message).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_errors_map_to_replies() {
        let code = |kind| reply_code(&io::Error::from(kind));
        assert_eq!(code(io::ErrorKind::ConnectionRefused), CONNECTION_REFUSED);
        assert_eq!(code(io::ErrorKind::NetworkUnreachable), NETWORK_UNREACHABLE);
        assert_eq!(code(io::ErrorKind::TimedOut), TTL_EXPIRED);
        assert_eq!(code(io::ErrorKind::Other), GENERAL_FAILURE);
    }
}
