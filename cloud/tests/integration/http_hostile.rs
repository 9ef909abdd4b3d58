//! HTTP servers that misbehave, on 127.0.0.1: reads stay bounded in memory and in time, and
//! failures that cannot heal are not retried.
//! - a server that ignores `Range` and answers 200 with an endless body;
//! - a server that sends one byte every second (slower than any deadline);
//! - a redirect loop;
//! - a 404 and a 400, each named.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cloud::{ErrorKind, RetryPolicy, Store, StoreError, StoreOptions, TaskError};

/// Serves every connection with `reply` on its own thread; counts connections.
fn serve(reply: fn(&mut TcpStream, u16)) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            c.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                // Read the request head.
                let mut buf = [0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                reply(&mut s, port);
            });
        }
    });
    (port, count)
}

fn store(request_deadline: Duration) -> Store {
    Store::new(StoreOptions {
        request_deadline,
        retry: RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
        },
        ..StoreOptions::default()
    })
}

#[test]
fn a_server_ignoring_range_with_an_endless_body_costs_only_the_bytes_asked() {
    let (port, _) = serve(|s, _| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n");
        let chunk = vec![7u8; 64 * 1024];
        // Endless: until the client hangs up.
        while s.write_all(&chunk).is_ok() {}
    });
    let st = store(Duration::from_secs(30));
    let url = format!("http://127.0.0.1:{port}/big.tif");
    let clock = Instant::now();
    let got = st.get_range(&url, 1000..1100).unwrap();
    assert_eq!(got.len(), 100);
    assert!(got.iter().all(|&b| b == 7));
    assert!(
        clock.elapsed() < Duration::from_secs(10),
        "{:?}",
        clock.elapsed()
    );
    // A whole-object read is capped too.
    let e = st.get_capped(&url, 1 << 20).unwrap_err();
    assert!(matches!(e, StoreError::TooLarge { .. }), "{e}");
    assert!(st.stats().bytes_read < 3 << 20, "{:?}", st.stats());
}

#[test]
fn a_trickling_server_cannot_hold_a_read_past_the_request_deadline() {
    let (port, count) = serve(|s, _| {
        let _ = s.write_all(
            b"HTTP/1.1 206 Partial Content\r\nContent-Length: 100\r\nConnection: close\r\n\r\n",
        );
        for _ in 0..100 {
            if s.write_all(b"x").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let st = store(Duration::from_millis(1500));
    let clock = Instant::now();
    let e = st
        .get_range(&format!("http://127.0.0.1:{port}/slow.tif"), 0..100)
        .unwrap_err();
    let took = clock.elapsed();
    // Three attempts of 1.5 s each (plus back-off), not 100 s.
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(e.to_string().contains("no complete answer within"), "{e}");
    assert_eq!(count.load(Ordering::SeqCst), 3);
    assert_eq!(TaskError::from(e).kind, ErrorKind::Storage);
}

#[test]
fn a_redirect_loop_is_refused_without_retries() {
    let (port, count) = serve(|s, port| {
        let _ = write!(
            s,
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}/loop\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    });
    let st = store(Duration::from_secs(30));
    let e = st
        .get_range(&format!("http://127.0.0.1:{port}/loop"), 0..10)
        .unwrap_err();
    assert!(matches!(e, StoreError::Refused { .. }), "{e}");
    assert!(e.to_string().contains("redirect"), "{e}");
    let kind = TaskError::from(e).kind;
    assert_eq!(kind, ErrorKind::InvalidInput);
    assert!(!kind.is_retryable());
    // One attempt: reqwest follows up to 10 redirects within it.
    let n = count.load(Ordering::SeqCst);
    assert!(n <= 11, "{n} connections");
}

#[test]
fn client_errors_are_named_and_not_retried() {
    let (port, count) = serve(|s, _| {
        let _ = s.write_all(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    });
    let st = store(Duration::from_secs(30));
    let e = st
        .get_range(&format!("http://127.0.0.1:{port}/x"), 0..10)
        .unwrap_err();
    assert!(e.to_string().contains("400 Bad Request"), "{e}");
    assert_eq!(TaskError::from(e).kind, ErrorKind::InvalidInput);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    let (port, _) = serve(|s, _| {
        let _ = s
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    });
    let e = st.head(&format!("http://127.0.0.1:{port}/x")).unwrap_err();
    assert!(
        e.to_string().contains("the server answered 404 Not Found"),
        "{e}"
    );
}
