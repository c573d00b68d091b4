//! What the replicated log's tests share: starting a node as a real process on its own data
//! folder (through the one child-process harness, `conformance::process::ChildServer`), talking
//! JSON to it, and reading its messages back.

#![allow(dead_code)] // Each test binary uses its own part of this module.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use flash_common::client::{Client, ClientResponse};
use flash_conformance::process::ChildServer;
use serde_json::Value;

/// How long one request may take: generous, for a loaded 2-core machine.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Every environment variable the binary reads (the originals' names included): a developer's
/// shell or CI's environment must not change what a test starts.
const ENV: [&str; 10] = [
    "HOSTNAME",
    "SERVER_TYPE",
    "API_KEY",
    "DELAY",
    "PORT",
    "FLASH_ADDR",
    "TP_NUM_OF_THREADS",
    "FLASH_ACCESS_LOG",
    "FLASH_DOCROOT",
    "FLASH_CGI_DIR",
];

/// One node: its process, and the folder holding its log and its stderr.
pub struct Node {
    /// The running process (killed when dropped).
    pub server: ChildServer,
    /// Its folder: `data/` is the log, `server-stderr.log` its stderr.
    pub dir: PathBuf,
    /// The arguments it was started with, to restart it the same way.
    pub args: Vec<String>,
}

impl Node {
    /// Starts `flash-replog --port PORT <args>` with its log in `dir/data`.
    #[track_caller]
    pub fn start(dir: &Path, port: u16, args: &[String]) -> Node {
        Node::start_with(dir, port, args, ChildServer::spawn)
    }

    /// [`Node::start`] with a stderr nobody reads any more (its `server-stderr.log` stays empty).
    #[track_caller]
    pub fn start_with_stderr_closed(dir: &Path, port: u16, args: &[String]) -> Node {
        Node::start_with(dir, port, args, ChildServer::spawn_with_stderr_closed)
    }

    #[track_caller]
    fn start_with(dir: &Path, port: u16, args: &[String], spawn: fn(Command, &Path) -> ChildServer) -> Node {
        std::fs::create_dir_all(dir).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_flash-replog"));
        cmd.args(["--port", &port.to_string(), "--quiet", "--threads", "1", "--data-dir"])
            .arg(dir.join("data"))
            .args(args)
            .current_dir(dir);
        for name in ENV {
            cmd.env_remove(name);
        }
        Node { server: spawn(cmd, dir), dir: dir.to_path_buf(), args: args.to_vec() }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// `kill -9`, then the same command on the same port and data folder.
    #[track_caller]
    pub fn kill_and_restart(self) -> Node {
        let (dir, port, args) = (self.dir.clone(), self.addr().port(), self.args.clone());
        self.server.kill_9();
        Node::start(&dir, port, &args)
    }
}

/// A port that was free a moment ago, for a node that a test must name before starting it
/// ("the primary knows S2, which is not started yet"). Binding and closing leaves a small
/// window in which another process could take it; the tests that use it start the node soon.
pub fn reserve_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Sends one request on a new connection.
pub fn request(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)], body: &str) -> ClientResponse {
    let mut c = Client::connect(addr, REQUEST_TIMEOUT).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    c.request(method, target, headers, body.as_bytes()).unwrap_or_else(|e| panic!("{method} {target} on {addr}: {e}"))
}

/// `POST target` with a JSON body.
pub fn post(addr: SocketAddr, target: &str, body: &str) -> ClientResponse {
    request(addr, "POST", target, &[("Content-Type", "application/json")], body)
}

/// `GET target`, as JSON (panics unless 200).
pub fn get_json(addr: SocketAddr, target: &str) -> Value {
    let res = request(addr, "GET", target, &[], "");
    assert_eq!(res.status, 200, "GET {target}: {}", res.text());
    json(&res)
}

/// A response's body as JSON.
pub fn json(res: &ClientResponse) -> Value {
    serde_json::from_slice(&res.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", res.text()))
}

/// `GET /messages` as (id, text) pairs.
pub fn messages(addr: SocketAddr) -> Vec<(u64, String)> {
    get_json(addr, "/messages")["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["meta"]["message_id"].as_u64().unwrap(), m["message"].as_str().unwrap().to_string()))
        .collect()
}

/// The status a primary's `/health` gives the node at `url`.
pub fn status_of(primary: SocketAddr, url: &str) -> String {
    let health = get_json(primary, "/health");
    let node = health["nodes"].as_array().unwrap().iter().find(|n| n["url"] == url).cloned();
    node.map(|n| n["status"].as_str().unwrap().to_string()).unwrap_or_default()
}

/// A body `{"message": text}`.
pub fn message(text: &str) -> String {
    serde_json::json!({ "message": text }).to_string()
}
