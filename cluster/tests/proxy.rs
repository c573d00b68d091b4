//! The proxy at the byte level, against scripted backends (`--upstream`): what a copy receives,
//! what the client receives, and what happens when a copy fails at an exact point.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Answer, Cluster, Scripted, PATIENCE};
use flash_conformance::wire::Wire;

/// A cluster in front of one scripted backend only (no copies of its own).
fn cluster_for(backend: &Scripted, extra: &[&str]) -> Cluster {
    let url = backend.url();
    let mut args = vec!["--upstream", url.as_str()];
    args.extend_from_slice(extra);
    Cluster::start(&args)
}

#[test]
fn a_copy_receives_the_request_without_hop_by_hop_fields_and_with_via_and_the_clients_address() {
    let backend = Scripted::start(|_, _| Answer::ok("seen"));
    let cluster = cluster_for(&backend, &[]);
    let mut wire = Wire::connect(cluster.addr());
    let res = wire.roundtrip(
        "POST /form HTTP/1.1\r\nHost: example.org\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\n\
         TE: trailers\r\nProxy-Authorization: secret\r\nX-Forwarded-For: 203.0.113.7\r\nX-End: kept\r\n\
         Transfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n",
    );
    res.assert_status(200);
    assert_eq!(res.text(), "seen");
    assert_eq!(res.header("via"), Some("1.1 flash-cluster"));
    let got = backend.received("POST /form ");
    assert_eq!(got.len(), 1, "{got:?}");
    let req = &got[0];
    assert!(req.starts_with("POST /form HTTP/1.1\r\nHost: example.org\r\n"), "{req}");
    for gone in ["X-Hop", "Keep-Alive", "TE:", "Proxy-Authorization", "Transfer-Encoding", "Connection"] {
        assert!(!req.contains(gone), "{gone} reached the copy:\n{req}");
    }
    for kept in [
        "X-End: kept\r\n",
        "Via: 1.1 flash-cluster\r\n",
        "X-Forwarded-For: 203.0.113.7, 127.0.0.1\r\n",
        "Forwarded: for=127.0.0.1;proto=http\r\n",
        "Content-Length: 4\r\n\r\nbody",
    ] {
        assert!(req.contains(kept), "{kept:?} missing from what the copy got:\n{req}");
    }
}

#[test]
fn a_chunked_response_reaches_the_client_with_a_length_and_without_the_copys_hop_fields() {
    let backend = Scripted::start(|_, _| Answer {
        bytes: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: X-Inner\r\nX-Inner: 1\r\nX-Kept: k\r\n\
                 Content-Type: text/plain\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n"
            .to_vec(),
        close: false,
    });
    let cluster = cluster_for(&backend, &[]);
    let mut wire = Wire::connect(cluster.addr());
    for _ in 0..2 {
        let res = wire.roundtrip("GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n");
        res.assert_status(200);
        assert_eq!(res.text(), "hello, world");
        assert_eq!(res.header("content-length"), Some("12"));
        assert_eq!(res.header("x-kept"), Some("k"));
        assert!(res.header("transfer-encoding").is_none() && res.header("x-inner").is_none(), "{}", res.head);
    }
    assert_eq!(backend.received("GET /chunked ").len(), 2);
}

/// The one case a client sees: the copy died after its response began. The client's connection
/// is closed without a word (never a truncated body passed off as whole, never another copy's
/// answer spliced in), the request is not sent again, and the next request is served.
#[test]
fn a_copy_dying_mid_body_closes_the_clients_connection_and_nothing_is_sent_twice() {
    let backend = Scripted::start(|req, _| {
        if req.starts_with("GET /dies ") {
            Answer::dies_after("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part of it")
        } else {
            Answer::ok("fine")
        }
    });
    let cluster = cluster_for(&backend, &["--max-fails", "100"]);
    let mut stream = TcpStream::connect(cluster.addr()).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(b"GET /dies HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let end = stream.read_to_end(&mut got);
    assert!(end.is_ok() || got.is_empty(), "{end:?}");
    assert!(
        got.is_empty(),
        "the client got bytes of a response that never finished: {:?}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(backend.received("GET /dies ").len(), 1, "a request whose response had begun was sent again");
    let res = Wire::connect(cluster.addr()).roundtrip("GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(res.assert_status(200).text(), "fine");
}

/// A copy that closes before answering: a GET, and a POST with an Idempotency-Key, go again; a
/// POST without one, which reached the copy, does not (502 saying why), as nginx does.
#[test]
fn a_failed_get_is_sent_again_a_post_is_not_unless_it_has_an_idempotency_key() {
    // Each request line fails the first time it arrives and is answered the second time.
    let backend = Scripted::start(|_, nth| if nth == 0 { Answer::dies_after("") } else { Answer::ok("second try") });
    let cluster = cluster_for(&backend, &["--max-fails", "100"]);
    let mut client = cluster.client();
    let res = client.get("/flaky").unwrap();
    assert_eq!((res.status, res.text().as_str()), (200, "second try"));
    assert_eq!(backend.received("GET /flaky ").len(), 2);

    let res = client.request("POST", "/pay", &[], b"1 EUR").unwrap();
    assert_eq!(res.status, 502, "{}", res.text());
    assert!(res.text().contains("Idempotency-Key"), "the 502 says how to make it retryable: {}", res.text());
    assert_eq!(backend.received("POST /pay ").len(), 1, "a POST that reached a copy was sent again");

    let res = client.request("POST", "/order", &[("Idempotency-Key", "k-1")], b"1 book").unwrap();
    assert_eq!((res.status, res.text().as_str()), (200, "second try"));
    assert_eq!(backend.received("POST /order ").len(), 2);
}

#[test]
fn retry_none_sends_nothing_twice_and_retry_all_sends_even_a_post_again() {
    let script = |_: &str, nth: usize| if nth == 0 { Answer::dies_after("") } else { Answer::ok("again") };
    let backend = Scripted::start(script);
    let cluster = cluster_for(&backend, &["--max-fails", "100", "--retry", "none"]);
    assert_eq!(cluster.client().get("/once").unwrap().status, 502);
    assert_eq!(backend.received("GET /once ").len(), 1);
    drop(cluster);

    let backend = Scripted::start(script);
    let cluster = cluster_for(&backend, &["--max-fails", "100", "--retry", "all"]);
    assert_eq!(cluster.client().request("POST", "/twice", &[], b"x").unwrap().status, 200);
    assert_eq!(backend.received("POST /twice ").len(), 2);
}

#[test]
fn a_slow_copy_is_answered_504_at_the_request_timeout() {
    let backend = Scripted::start(|req, _| {
        if req.starts_with("GET /slow ") {
            // Never answers; the connection stays open until the cluster gives up on it.
            Answer { bytes: Vec::new(), close: false }
        } else {
            Answer::ok("quick")
        }
    });
    let cluster = cluster_for(&backend, &["--request-timeout", "300ms"]);
    let started = std::time::Instant::now();
    let res = cluster.client().get("/slow").unwrap();
    assert_eq!(res.status, 504, "{}", res.text());
    assert!(started.elapsed() >= Duration::from_millis(300), "answered before the timeout");
    assert_eq!(backend.received("GET /slow ").len(), 1, "a timed-out request is not sent again");
    assert_eq!(cluster.client().get("/quick").unwrap().status, 200);
}
