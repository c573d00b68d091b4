//! Bad input gets a clear 4xx and stores nothing twice: malformed JSON, missing or mistyped
//! fields, w out of range, a body past `--max-body`, a missing or wrong token, deliveries with a
//! gap or a foreign id, writes sent to a secondary; and bad flags are refused by the command
//! line, naming the flag.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{get_json, json, message, messages, post, request, status_of, Node};
use flash_conformance::child::run_to_exit;
use flash_conformance::wait::until_true;

const LIMIT: Duration = Duration::from_secs(30);

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn bad_writes_are_refused_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let s1 = Node::start(&tmp.path().join("s1"), 0, &args(&["--role", "secondary", "--heartbeat-ms", "100"]));
    let m = Node::start(
        &tmp.path().join("m"),
        0,
        &args(&["--heartbeat-ms", "100", "--max-body", "1KiB", "--secondary", &s1.url()]),
    );
    until_true("S1 healthy", LIMIT, || status_of(m.addr(), &s1.url()) == "healthy");
    let cases: [(&str, &str, u16, &str); 9] = [
        ("/messages", "{\"message\": ", 400, "malformed JSON"),
        ("/messages", "[1, 2]", 400, "JSON object"),
        ("/messages", "{}", 400, "missing field"),
        ("/messages", "{\"message\": 42}", 400, "must be a string"),
        ("/messages?w=0", "{\"message\": \"x\"}", 400, "from 1 to 2"),
        ("/messages?w=3", "{\"message\": \"x\"}", 400, "from 1 to 2"),
        ("/messages?w=two", "{\"message\": \"x\"}", 400, "whole number"),
        ("/messages", "{\"message\": \"x\", \"w\": -1}", 400, "whole number"),
        ("/messages?timeout_ms=soon", "{\"message\": \"x\"}", 400, "timeout_ms"),
    ];
    for (target, body, status, reason) in cases {
        let r = post(m.addr(), target, body);
        assert_eq!(r.status, status, "{target} {body}: {}", r.text());
        assert!(r.text().contains(reason), "{target} {body}: the answer says why: {}", r.text());
    }
    let huge = message(&"x".repeat(4096));
    let r = post(m.addr(), "/messages", &huge);
    assert_eq!(r.status, 413, "past --max-body: {}", r.text());
    // Within --max-body, but the delivery that would carry it to S1 (the same limit) would not be:
    // refused now, or S1 could never take it, nor anything after it.
    let r = post(m.addr(), "/messages", &message(&"x".repeat(900)));
    assert_eq!(r.status, 413, "past what a delivery can carry: {}", r.text());
    assert!(r.text().contains("could not be delivered"), "{}", r.text());
    assert_eq!(get_json(m.addr(), "/health")["last_id"], 0, "nothing was stored");

    // A secondary takes no writes and says where the primary is.
    let r = post(s1.addr(), "/messages", &message("x"));
    assert_eq!(r.status, 405, "{}", r.text());
    assert!(r.header("allow").is_some());
    let r = request(s1.addr(), "GET", "/messages?after=x", &[], "");
    assert_eq!(r.status, 400, "{}", r.text());
    let r = request(m.addr(), "GET", "/messages?limit=0", &[], "");
    assert_eq!(r.status, 400, "an empty page would send a paging client round for ever: {}", r.text());
    assert_eq!(request(m.addr(), "GET", "/nothing-here", &[], "").status, 404);
    assert_eq!(post(m.addr(), "/messages", &message("ok")).status, 201);
    until_true("S1 learns the primary's URL", LIMIT, || {
        let r = post(s1.addr(), "/messages", &message("x"));
        r.text().contains(&m.url())
    });
}

#[test]
fn deliveries_with_a_gap_or_a_foreign_id_store_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Node::start(&tmp.path().join("s"), 0, &args(&["--role", "secondary"]));
    let batch = |entries: &[(u64, &str)]| {
        let list: Vec<_> = entries.iter().map(|(id, t)| serde_json::json!({"id": id, "message": t, "at": 0})).collect();
        serde_json::json!({ "entries": list }).to_string()
    };
    let r = post(s.addr(), "/replicate", &batch(&[(1, "a"), (2, "b")]));
    assert_eq!((r.status, json(&r)["last_id"].as_u64()), (200, Some(2)), "{}", r.text());
    // The same batch again (a retried delivery): acknowledged, not stored twice.
    let r = post(s.addr(), "/replicate", &batch(&[(1, "a"), (2, "b")]));
    assert_eq!((r.status, json(&r)["last_id"].as_u64()), (200, Some(2)), "{}", r.text());
    // Overlapping: 2 is known, 3 is new.
    let r = post(s.addr(), "/replicate", &batch(&[(2, "b"), (3, "c")]));
    assert_eq!((r.status, json(&r)["last_id"].as_u64()), (200, Some(3)), "{}", r.text());
    // A gap: 5 with 4 missing.
    let r = post(s.addr(), "/replicate", &batch(&[(5, "e")]));
    assert_eq!((r.status, json(&r)["have"].as_u64()), (409, Some(3)), "{}", r.text());
    assert!(r.text().contains("gap"));
    // A foreign id: message 3 here is "c"; nothing of this batch may be stored, 4 included.
    let r = post(s.addr(), "/replicate", &batch(&[(3, "not c"), (4, "d")]));
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("foreign id"), "{}", r.text());
    // Not consecutive, malformed, missing.
    for body in [
        batch(&[(4, "d"), (6, "f")]),
        "{\"entries\": [{\"id\": 0, \"message\": \"z\"}]}".into(),
        "{}".into(),
        "nope".into(),
    ] {
        let r = post(s.addr(), "/replicate", &body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
    }
    let want: Vec<(u64, String)> = vec![(1, "a".into()), (2, "b".into()), (3, "c".into())];
    assert_eq!(messages(s.addr()), want, "each message once, nothing from a refused batch");
}

#[test]
fn a_token_guards_every_endpoint_but_the_healthcheck() {
    let tmp = tempfile::tempdir().unwrap();
    let s1 = Node::start(
        &tmp.path().join("s1"),
        0,
        &args(&["--role", "secondary", "--token", "s3cret", "--heartbeat-ms", "100"]),
    );
    let m = Node::start(
        &tmp.path().join("m"),
        0,
        &args(&["--token", "s3cret", "--heartbeat-ms", "100", "--secondary", &s1.url()]),
    );
    let hdr = [("Authorization", "Bearer s3cret")];
    let json_type = ("Content-Type", "application/json");
    // Nodes use the token between themselves: S1 turns healthy only if the primary's heartbeats pass.
    until_true("S1 healthy with the token", LIMIT, || {
        let r = request(m.addr(), "GET", "/health", &hdr, "");
        json(&r)["nodes"][1]["status"] == "healthy"
    });
    let r = request(m.addr(), "GET", "/messages", &[], "");
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.header("www-authenticate").is_some());
    let r = request(m.addr(), "POST", "/messages", &[("Authorization", "Bearer wrong"), json_type], &message("x"));
    assert_eq!(r.status, 403, "{}", r.text());
    let r = request(s1.addr(), "POST", "/replicate", &[("x-token", "nope")], "{\"entries\": []}");
    assert_eq!(r.status, 403, "a foreign node cannot deliver: {}", r.text());
    assert_eq!(request(m.addr(), "GET", "/healthcheck", &[], "").text(), "HEALTHY");
    let r = request(m.addr(), "POST", "/messages?w=2", &[hdr[0], json_type], &message("with token"));
    assert_eq!(r.status, 201, "{}", r.text());
    let r = request(s1.addr(), "GET", "/messages", &[("x-token", "s3cret")], "");
    assert_eq!(json(&r)["data"][0]["message"], "with token", "the original's x-token works too");
}

#[test]
fn bad_flags_are_refused_naming_the_flag() {
    for (flags, named) in [
        (vec!["--fail-after-append", "2"], "--fail-after-append"),
        (vec!["--delay", "soon"], "--delay"),
        (vec!["--secondary", "127.0.0.1:80"], "--secondary"),
        (vec!["--role", "leader"], "--role"),
        (vec!["--fsync", "sometimes"], "--fsync"),
        (vec!["--heartbeat-ms", "0"], "--heartbeat-ms"),
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_flash-replog"));
        cmd.args(["--port", "0", "--quiet"]).args(&flags).env_remove("SERVER_TYPE");
        let (status, _, err) = run_to_exit(&mut cmd, LIMIT);
        assert_eq!(status.code(), Some(2), "{flags:?}: {err}");
        assert!(err.contains(named), "{flags:?} names {named}: {err}");
    }
    // A role's flags on the wrong role: refused before listening, saying which.
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flash-replog"));
    cmd.args(["--port", "0", "--quiet", "--role", "secondary", "--secondary", "http://127.0.0.1:9", "--data-dir"])
        .arg(tmp.path())
        .env_remove("SERVER_TYPE");
    let (status, _, err) = run_to_exit(&mut cmd, LIMIT);
    assert!(!status.success() && err.contains("--secondary"), "{err}");
}
