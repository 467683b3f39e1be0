//! The SSH-like banner and the SOCKS5 proxy listeners, spoken to byte by
//! byte: what a client sends and what comes back, including the refusals
//! the monitor's own client never provokes (BIND, unknown address types).

use std::net::SocketAddr;

use monitor_testkit::{free_port, mock::MockServer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const FLAGS: &[&str] = &[
    "--latency-ms=0",
    "--shutdown-grace-ms=0",
    "--ssh-listen=127.0.0.1:0",
    "--socks5-listen=127.0.0.1:0",
];

async fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    stream.read_to_end(&mut received).await.unwrap();
    received
}

/// CONNECT to `address` (IPv4) over a stream past method selection.
fn connect_request(address: SocketAddr) -> Vec<u8> {
    let SocketAddr::V4(address) = address else {
        panic!("IPv4 only")
    };
    [&[5, 1, 0, 1][..], &address.ip().octets(), &address.port().to_be_bytes()].concat()
}

#[tokio::test]
async fn the_ssh_listener_sends_its_banner_and_closes_after_the_clients_line() {
    let mock = MockServer::start(FLAGS).await;
    let mut stream = TcpStream::connect(mock.ssh_address.unwrap()).await.unwrap();
    let mut banner = [0_u8; 25];
    stream.read_exact(&mut banner).await.unwrap();
    assert_eq!(&banner, b"SSH-2.0-MonitorMock_1.0\r\n");
    stream.write_all(b"SSH-2.0-Test_1\r\n").await.unwrap();
    assert_eq!(read_to_end(&mut stream).await, b"");
}

#[tokio::test]
async fn the_proxy_tunnels_to_the_target() {
    let mock = MockServer::start(FLAGS).await;
    let mut stream = TcpStream::connect(mock.socks5_address.unwrap()).await.unwrap();
    stream.write_all(&[5, 1, 0]).await.unwrap();
    let mut chosen = [0_u8; 2];
    stream.read_exact(&mut chosen).await.unwrap();
    assert_eq!(chosen, [5, 0]);
    stream.write_all(&connect_request(mock.address)).await.unwrap();
    let mut reply = [0_u8; 10];
    stream.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply[..4], &[5, 0, 0, 1]);
    stream
        .write_all(b"GET /__ping HTTP/1.1\r\nHost: mock\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = String::from_utf8(read_to_end(&mut stream).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nok\n"), "{answer}");
}

#[tokio::test]
async fn the_proxy_replies_with_the_failure() {
    let mock = MockServer::start(FLAGS).await;
    let proxy = mock.socks5_address.unwrap();
    let closed: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let bind = {
        let mut request = connect_request(mock.address);
        request[1] = 2;
        request
    };
    for (request, code) in [
        (connect_request(closed), 5_u8),
        (bind, 7),
        (vec![5, 1, 0, 9], 8),
        // A name that does not resolve: host unreachable.
        ([&[5, 1, 0, 3, 19][..], b"nonexistent.invalid", &[0, 80]].concat(), 4),
    ] {
        let mut stream = TcpStream::connect(proxy).await.unwrap();
        stream.write_all(&[5, 1, 0]).await.unwrap();
        let mut chosen = [0_u8; 2];
        stream.read_exact(&mut chosen).await.unwrap();
        stream.write_all(&request).await.unwrap();
        let reply = read_to_end(&mut stream).await;
        assert_eq!(&reply[..2], &[5, code], "{request:?}: {reply:?}");
    }
}

#[tokio::test]
async fn a_proxy_with_a_login_refuses_anything_else() {
    let flags = [FLAGS, &["--socks5-user=probe", "--socks5-password=pw"]].concat();
    let mock = MockServer::start(&flags).await;
    let proxy = mock.socks5_address.unwrap();

    let mut anonymous = TcpStream::connect(proxy).await.unwrap();
    anonymous.write_all(&[5, 1, 0]).await.unwrap();
    assert_eq!(read_to_end(&mut anonymous).await, [5, 0xff]);

    for (password, verdict) in [(&b"pw"[..], 0_u8), (b"wrong", 1)] {
        let mut stream = TcpStream::connect(proxy).await.unwrap();
        stream.write_all(&[5, 2, 0, 2]).await.unwrap();
        let mut chosen = [0_u8; 2];
        stream.read_exact(&mut chosen).await.unwrap();
        assert_eq!(chosen, [5, 2]);
        let login = [&[1, 5][..], b"probe", &[password.len() as u8], password].concat();
        stream.write_all(&login).await.unwrap();
        let mut answer = [0_u8; 2];
        stream.read_exact(&mut answer).await.unwrap();
        assert_eq!(answer, [1, verdict]);
    }
}

#[tokio::test]
async fn the_listeners_stop_with_the_mock() {
    let mock = MockServer::start(FLAGS).await;
    let (ssh, socks5) = (mock.ssh_address.unwrap(), mock.socks5_address.unwrap());
    mock.shutdown().await;
    assert!(TcpStream::connect(ssh).await.is_err());
    assert!(TcpStream::connect(socks5).await.is_err());
}
