//! Static files, from a docroot built for each case in a temporary folder: known contents,
//! a subfolder, and symlinks, one inside and two pointing out, next to a secret file just
//! outside the root that no request may ever read.

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::symlink;
use std::path::PathBuf;

use flash_common::server::Serve;
use tempfile::TempDir;

use super::{assert_serves, get};
use crate::server::TestServer;
use crate::wire::{Response, Wire};

/// Twenty bytes whose ranges are easy to read.
const NOTES: &str = "0123456789abcdefghij";
/// The index page.
const INDEX: &str = "<!doctype html><title>conformance</title><p>index</p>\n";
/// The subfolder's index page.
const SUB_INDEX: &str = "<!doctype html><p>sub index</p>\n";
/// What the file outside the root holds; seeing it in any response is a failure.
const SECRET: &str = "FLASH-SECRET: outside the document root";

/// A docroot and the secret next to it; removed on drop.
struct Docroot {
    /// The folder holding `secret.txt` and `www/`.
    _parent: TempDir,
    /// The document root, `parent/www`.
    root: PathBuf,
}

impl Docroot {
    fn new() -> Docroot {
        let parent = tempfile::tempdir().expect("a temporary docroot");
        let root = parent.path().join("www");
        let write = |path: &str, body: &str| fs::write(root.join(path), body).expect("write a docroot file");
        fs::create_dir_all(root.join("sub")).expect("create docroot");
        fs::create_dir_all(root.join("empty")).expect("create docroot");
        fs::write(parent.path().join("secret.txt"), SECRET).expect("write the secret");
        write("index.html", INDEX);
        write("notes.txt", NOTES);
        write("style.css", "p { color: red }\n");
        write("data.json", "{\"a\": 1}\n");
        write("blob.bin", "\u{1}\u{2}\u{3}");
        write("sub/index.html", SUB_INDEX);
        write("sub/page.txt", "page\n");
        symlink("notes.txt", root.join("inside")).expect("symlink");
        symlink("../secret.txt", root.join("leak")).expect("symlink");
        symlink("..", root.join("leakdir")).expect("symlink");
        Docroot { _parent: parent, root }
    }

    /// Starts `serve` on this docroot.
    fn serve(&self, serve: Serve) -> TestServer {
        let root = self.root.clone();
        TestServer::start_with(serve, move |c| c.docroot = Some(root))
    }
}

/// One request on a fresh connection.
fn fetch(addr: SocketAddr, request: impl AsRef<[u8]>) -> Response {
    Wire::connect(addr).roundtrip(request)
}

/// `/` and `/sub/` serve their `index.html`; each file gets the type its extension says; a
/// symlink that stays inside the root is followed; a missing file is 404.
pub fn static_index_and_content_types(serve: Serve) {
    let docroot = Docroot::new();
    let server = docroot.serve(serve);
    let addr = server.addr();
    let cases = [
        ("/", "text/html", INDEX),
        ("/index.html", "text/html", INDEX),
        ("/sub/", "text/html", SUB_INDEX),
        ("/notes.txt", "text/plain", NOTES),
        // Typed by the link's name or its target's: either is fair, so only the body is checked.
        ("/inside", "", NOTES),
        ("/style.css", "text/css", "p { color: red }\n"),
        ("/data.json", "application/json", "{\"a\": 1}\n"),
        ("/blob.bin", "application/octet-stream", "\u{1}\u{2}\u{3}"),
    ];
    let mut wire = Wire::connect(addr);
    for (target, ct, body) in cases {
        let res = wire.roundtrip(get(target));
        res.assert_status(200);
        let got = res.header("content-type").unwrap_or_default();
        assert!(got.starts_with(ct), "{target}: Content-Type {got:?}, expected {ct}");
        assert_eq!(res.text(), body, "{target}");
    }
    let res = wire.roundtrip(get("/missing.txt"));
    res.assert_status(404);
    server.stop();
}

/// A directory asked for without its slash redirects to it (so relative links resolve); a
/// directory without an index is not listed.
pub fn static_directory_without_slash_is_301(serve: Serve) {
    let docroot = Docroot::new();
    let server = docroot.serve(serve);
    let res = fetch(server.addr(), get("/sub"));
    res.assert_status(301);
    assert_eq!(res.header("location"), Some("/sub/"));
    let res = fetch(server.addr(), get("/empty/"));
    assert!(matches!(res.status, 403 | 404), "a folder without index.html answered {}", res.status);
    server.stop();
}

/// A file path is decoded segment by segment (RFC 3986 §6.2.2.2 for the unreserved characters):
/// `/%73ub/page%2Etxt` is `/sub/page.txt`, while `%2F` is part of a name, never a segment break,
/// so `/sub%2Fpage.txt` names nothing.
pub fn static_percent_encoded_path(serve: Serve) {
    let docroot = Docroot::new();
    let server = docroot.serve(serve);
    let addr = server.addr();
    for target in ["/%73ub/page%2Etxt", "/sub/%70age.txt", "/%73%75%62/page.txt"] {
        assert_eq!(fetch(addr, get(target)).assert_status(200).text(), "page\n", "GET {target}");
    }
    for target in ["/sub%2Fpage.txt", "/sub%2fpage.txt", "/%2Fsub/page.txt"] {
        fetch(addr, get(target)).assert_status(404);
    }
    let res = fetch(addr, get("/%73ub"));
    res.assert_status(301);
    assert_eq!(res.header("location"), Some("/sub/"), "the redirect names the decoded directory");
    server.stop();
}

/// `Last-Modified` comes back in `If-Modified-Since` as 304, with no body; an older date is 200.
pub fn static_if_modified_since_is_304(serve: Serve) {
    let docroot = Docroot::new();
    let server = docroot.serve(serve);
    let mut wire = Wire::connect(server.addr());
    let res = wire.roundtrip(get("/notes.txt"));
    res.assert_status(200);
    let modified =
        res.header("last-modified").unwrap_or_else(|| panic!("no Last-Modified in:\n{}", res.head)).to_string();
    // The 304 and the request after it in one write: a stray body would break the second.
    wire.send(format!(
        "GET /notes.txt HTTP/1.1\r\nHost: flash\r\nIf-Modified-Since: {modified}\r\n\r\n{}",
        get("/hello")
    ));
    let res = wire.response();
    res.assert_status(304);
    assert!(res.body.is_empty());
    assert_eq!(wire.response().text(), "Hello, world!");
    let res = wire.roundtrip(
        "GET /notes.txt HTTP/1.1\r\nHost: flash\r\nIf-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\n",
    );
    res.assert_status(200);
    assert_eq!(res.text(), NOTES);
    server.stop();
}

/// A single range is 206 with `Content-Range` and just those bytes; a range past the end is 416.
pub fn static_range_is_206_or_416(serve: Serve) {
    let docroot = Docroot::new();
    let server = docroot.serve(serve);
    let mut wire = Wire::connect(server.addr());
    for (range, body, content_range) in [
        ("bytes=0-4", "01234", "bytes 0-4/20"),
        ("bytes=15-", "fghij", "bytes 15-19/20"),
        ("bytes=-3", "hij", "bytes 17-19/20"),
    ] {
        let res = wire.roundtrip(format!("GET /notes.txt HTTP/1.1\r\nHost: flash\r\nRange: {range}\r\n\r\n"));
        res.assert_status(206);
        assert_eq!(res.text(), body, "{range}");
        assert_eq!(res.header("content-range"), Some(content_range), "{range}");
        assert_eq!(res.header("content-length"), Some(body.len().to_string().as_str()), "{range}");
    }
    let res = wire.roundtrip("GET /notes.txt HTTP/1.1\r\nHost: flash\r\nRange: bytes=100-\r\n\r\n");
    res.assert_status(416);
    assert_eq!(res.header("content-range"), Some("bytes */20"));
    server.stop();
}

/// HEAD on a file: its length and no body (the GET after it on the connection proves it).
pub fn static_head_has_length_no_body(serve: Serve) {
    let docroot = Docroot::new();
    let server = docroot.serve(serve);
    let mut wire = Wire::connect(server.addr());
    wire.send(format!("HEAD /notes.txt HTTP/1.1\r\nHost: flash\r\n\r\n{}", get("/notes.txt")));
    let res = wire.head_response();
    res.assert_status(200);
    assert_eq!(res.header("content-length"), Some("20"));
    assert_eq!(wire.response().text(), NOTES);
    server.stop();
}

/// Every way out of the root, plain or encoded, through `..`, NUL, backslashes, absolute paths
/// or symlinks, is 403 or 404, and no response ever carries the secret.
pub fn static_traversal_never_leaves_root(serve: Serve) {
    let docroot = Docroot::new();
    let server = docroot.serve(serve);
    let addr = server.addr();
    let attempts = [
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/.%2e/secret.txt",
        "/..%2fsecret.txt",
        "/%2f..%2fsecret.txt",
        "/sub%2f..%2f..%2fsecret.txt",
        "/..%5csecret.txt",
        "/%5c..%5csecret.txt",
        "/notes.txt%00",
        "/notes.txt%00.html",
        "/%00/../secret.txt",
        "//etc/passwd",
        "/etc/passwd",
        "/%2fetc%2fpasswd",
        "/leak",
        "/leakdir/secret.txt",
        "/leakdir/www/../secret.txt",
    ];
    for target in attempts {
        let res = fetch(addr, get(target));
        assert!(matches!(res.status, 403 | 404), "{target} answered {}:\n{}{}", res.status, res.head, res.text());
        assert!(!res.text().contains("FLASH-SECRET"), "{target} leaked the file outside the root");
        assert!(!res.text().contains("root:"), "{target} leaked /etc/passwd");
    }
    assert_serves(addr);
    server.stop();
}
