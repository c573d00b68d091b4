//! Fuzzes the replicated log's request bodies (`flash_replog::ReplogApp`): client writes,
//! replication batches and registrations, each as a real request through the application.
//!
//! The options byte's low two bits pick the request: 0 `POST /messages` to a primary (the data
//! is the body), 1 `POST /messages/` + the data's first line (the write concern in the path, a
//! query after it), 2 `POST /replicate` to a secondary (a batch from a primary), 3 `POST
//! /register` to a primary. The nodes live across inputs, each in a folder under `$TMPDIR`
//! (`fuzz/run.sh` points it at a scratch folder it removes), logging with `--fsync never` (the
//! log's writes and callbacks are the same; only the disk flush is skipped), and are replaced
//! every few thousand messages so that a long run stays small.
//!
//! No node may ever reach anything but this process: the write primary and the secondary have
//! no peers, and a registration's `url` is replaced by the address of a listener this target
//! holds (which closes every connection), so the delivery thread a registration starts talks
//! only to it. The `url` as sent is still checked with `link::parse_url` when it names an IP
//! address, and left alone otherwise: parsing a host name resolves it, and a fuzzer must not
//! send DNS queries.
//!
//! Every answer must come (a write waits for its log; a hang is a crash), be JSON, and never be
//! a 500. An accepted write (201, or 504 when its `timeout_ms` ran out) has the next message id;
//! a 201 repeats the message sent. An accepted batch is acknowledged with a 200 saying what the
//! secondary holds; a registration that was accepted names the listener.

#![no_main]

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use flash_common::config::defaults;
use flash_common::parse::{parse_head, Head, Limits};
use flash_common::server::Setup;
use flash_common::{App, Config, Reply, Request, Response, Status};
use flash_fuzz::Input;
use flash_replog::link::parse_url;
use flash_replog::wal::Fsync;
use flash_replog::{Flags, ReplogApp, Role};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Messages a node takes before it is replaced by a fresh one.
const MESSAGES_PER_NODE: u64 = 5000;

/// A node and how much it holds.
struct Node {
    /// The application, serving one role.
    app: ReplogApp,
    /// Its log's folder.
    dir: PathBuf,
    /// Messages it has accepted: the last message id.
    messages: u64,
}

/// The nodes, opened on first use.
#[derive(Default)]
struct Nodes {
    /// The primary that takes client writes (no secondaries, so `w` is 1).
    writes: Option<Node>,
    /// The secondary that takes replication batches (no primary to register with).
    replica: Option<Node>,
    /// The primary that takes registrations, and the listener they are pointed at.
    registrar: Option<(Node, String)>,
    /// Nodes opened so far, to name their folders.
    opened: u64,
}

static NODES: Mutex<Option<Nodes>> = Mutex::new(None);

fuzz_target!(|input: &[u8]| {
    let Input { options, data, .. } = Input::new(input);
    let mut guard = NODES.lock().unwrap_or_else(PoisonError::into_inner);
    let nodes = guard.get_or_insert_with(Nodes::default);
    match options & 3 {
        0 => write(nodes, "/messages".to_string(), data),
        1 => {
            let (line, rest) = first_line(data);
            write(nodes, format!("/messages/{line}"), rest)
        }
        2 => replicate(nodes, data),
        _ => register(nodes, data),
    }
});

/// A client write to the write primary.
fn write(nodes: &mut Nodes, target: String, body: &[u8]) {
    let node = nodes.writes.get_or_insert_with(|| open(&mut nodes.opened, Role::Primary, 1));
    let Some(res) = call(&node.app, &target, body) else { return };
    let json = check(&res, &target);
    match res.status {
        201 | 504 => {
            let id = json.pointer("/meta/message_id").or_else(|| json.get("message_id")).and_then(Value::as_u64);
            assert_eq!(id, Some(node.messages + 1), "{target}: an accepted write with the wrong id: {json}");
            node.messages += 1;
            if res.status == 201 {
                let sent: Value = serde_json::from_slice(body).expect("an accepted body is JSON");
                assert_eq!(json.get("message"), sent.get("message"), "{target}: the message came back otherwise");
            }
        }
        400 | 405 => {}
        other => panic!("{target} -> {other}: {json}"),
    }
    if node.messages >= MESSAGES_PER_NODE {
        close(nodes.writes.take());
    }
}

/// A replication batch to the secondary.
fn replicate(nodes: &mut Nodes, body: &[u8]) {
    let node = nodes.replica.get_or_insert_with(|| open(&mut nodes.opened, Role::Secondary, 1));
    let Some(res) = call(&node.app, "/replicate", body) else { return };
    let json = check(&res, "/replicate");
    match res.status {
        200 => {
            let have = json.get("have").and_then(Value::as_u64).expect("an acknowledgement says what it holds");
            assert!(have >= node.messages, "the secondary went from {} messages to {have}", node.messages);
            node.messages = have;
        }
        400 | 409 => {}
        other => panic!("/replicate -> {other}: {json}"),
    }
    if node.messages >= MESSAGES_PER_NODE {
        close(nodes.replica.take());
    }
}

/// A registration to the registrar primary, pointed at the listener this target holds.
fn register(nodes: &mut Nodes, body: &[u8]) {
    let opened = &mut nodes.opened;
    let (node, sink) = nodes.registrar.get_or_insert_with(|| {
        let node = open(opened, Role::Primary, 60_000);
        (node, sink())
    });
    let mut body = body.to_vec();
    if let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(&body) {
        if let Some(Value::String(url)) = fields.get("url") {
            let literal = url.strip_prefix("http://").map(|h| h.strip_suffix('/').unwrap_or(h));
            let parsed = match literal.map(str::parse::<SocketAddr>) {
                Some(Ok(addr)) => {
                    let parsed = parse_url(url);
                    assert!(parsed.as_ref().is_ok_and(|n| n.addr == addr), "{url:?} parsed as {parsed:?}");
                    true
                }
                _ => false,
            };
            // A URL that parsed, or that could only be checked by resolving a name, becomes the
            // listener's; one that names an address and failed stays, to be refused.
            if parsed || literal.is_none_or(|h| h.parse::<SocketAddr>().is_err()) {
                fields.insert("url".into(), Value::String(sink.clone()));
                body = serde_json::to_vec(&fields).expect("a map serializes");
            }
        }
    }
    let Some(res) = call(&node.app, "/register", &body) else { return };
    let json = check(&res, "/register");
    match res.status {
        200 => assert_eq!(json.get("registered").and_then(Value::as_str), Some(sink.as_str()), "{json}"),
        400 => {}
        other => panic!("/register -> {other}: {json}"),
    }
}

/// The data's first line and what follows it.
fn first_line(data: &[u8]) -> (String, &[u8]) {
    match data.iter().position(|&c| c == b'\n') {
        Some(nl) => (String::from_utf8_lossy(&data[..nl]).into_owned(), &data[nl + 1..]),
        None => (String::from_utf8_lossy(data).into_owned(), &[][..]),
    }
}

/// Sends `POST target` with `body` through the application and waits for the answer; `None` when
/// the target is not one a client could send (the parser refuses the request line).
fn call(app: &ReplogApp, target: &str, body: &[u8]) -> Option<Response> {
    let mut raw = format!("POST {target} HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    let head_len = raw.len();
    raw.extend_from_slice(body);
    let mut head = Head::default();
    match parse_head(&raw, &Limits::default(), &mut head) {
        Ok(Some(len)) if len == head_len => {}
        _ => return None,
    }
    let req = Request::new(&raw, &head, &raw[head_len..], "127.0.0.1:40000".parse().expect("an address"));
    Some(match app.call(&req) {
        Reply::Now(res) => res,
        Reply::Later(pending) => pending.wait(),
    })
}

/// What holds of every answer: JSON, and never a 500.
fn check(res: &Response, target: &str) -> Value {
    let body = match &res.body {
        flash_common::Body::Bytes(b) => &b[..],
        flash_common::Body::Static(b) => b,
        _ => &[][..],
    };
    let json: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{target} -> {}: not JSON ({e}): {:?}", res.status, String::from_utf8_lossy(body)));
    assert_ne!(res.status, 500, "{target}: {json}");
    json
}

/// Opens a node of `role` in a fresh folder, with this heartbeat.
fn open(opened: &mut u64, role: Role, heartbeat_ms: u64) -> Node {
    *opened += 1;
    let dir = std::env::temp_dir().join(format!("flash-fuzz-replog-{}-{opened}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut flags: Flags = defaults();
    flags.role = role;
    flags.data_dir = Some(dir.clone());
    flags.fsync = Fsync::Never;
    flags.heartbeat_ms = heartbeat_ms;
    flags.node_timeout = Duration::from_millis(100);
    let config = Config::for_tests();
    // The node's own address: never dialled (a primary does not call itself; a secondary
    // without --primary registers nowhere).
    let addr: SocketAddr = "127.0.0.1:1".parse().expect("an address");
    let setup = Setup { config: &config, flags, addr, status: Arc::new(Status::new()) };
    let app = ReplogApp::new(setup).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    Node { app, dir, messages: 0 }
}

/// Stops a node and removes its folder.
fn close(node: Option<Node>) {
    if let Some(node) = node {
        node.app.shutdown();
        drop(node.app);
        let _ = std::fs::remove_dir_all(&node.dir);
    }
}

/// A listener on loopback that closes every connection, for registrations to point at; its URL.
fn sink() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("a bound address"));
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            drop(conn);
        }
    });
    url
}
