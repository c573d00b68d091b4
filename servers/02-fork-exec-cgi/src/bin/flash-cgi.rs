//! `flash-cgi`: Flash's application as a CGI/1.1 program, answering exactly one request.
//!
//! Server 02 runs it for every request outside `/cgi-bin/`, so that `/hello`, `/echo`, the stats
//! service and static files behave exactly as on every other server, only a process per request
//! slower. It takes the request from the CGI environment and stdin (RFC 3875 §4) and answers on
//! stdout with a CGI response (§6): `Status`, `Content-Type`, the other fields, a blank line and
//! the body; the server frames it for the client.
//!
//! Every answer carries `Flash-CGI-PID: <this process's id>`, so that the model's one fact, a
//! new process per request, can be seen from outside.
//!
//! To hand the application the very `Request` the other servers build, it writes the request
//! head back as HTTP bytes from the variables and parses them with the shared parser, rather
//! than growing a second way to make a `Request`. Its configuration comes from the variables the
//! server sets (`FLASH_DOCROOT`, `FLASH_RESULTS_DIR`, `FLASH_STATS_CSV`), read by the same clap
//! definition as the servers' flags. The stats service runs jobs inline and keeps their state
//! on disk, because this process is gone once it has answered.

use std::env::var_os;
use std::io::{self, BufWriter, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;
use std::sync::Arc;

use clap::FromArgMatches;
use flash_common::parse::{parse_head, Head, Limits, HEADER_CAP};
use flash_common::response::reason_phrase;
use flash_common::server::command;
use flash_common::{App, Body, Config, Reply, Request, Response, Status};
use flash_demo::{DemoFlags, FlashApp};

fn main() -> ExitCode {
    if var_os("GATEWAY_INTERFACE").is_none() {
        eprintln!(
            "flash-cgi answers one HTTP request as a CGI/1.1 program (RFC 3875), from the environment \
             and stdin; it is run by flash-02-fork-exec-cgi (or another CGI server), not by hand."
        );
        return ExitCode::from(2);
    }
    let res = answer().unwrap_or_else(|e| {
        eprintln!("flash-cgi: {e}");
        Response::error(500, &format!("the application could not run: {e}"))
    });
    let mut out = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    match write_response(res, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        // The server stopped reading (it timed us out); nobody is left to tell but the log.
        Err(e) => {
            eprintln!("flash-cgi: writing the response: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Builds the application, rebuilds the request, and answers it.
fn answer() -> Result<Response, String> {
    let matches =
        command::<DemoFlags>("flash-cgi", "").try_get_matches_from(["flash-cgi"]).map_err(|e| e.to_string())?;
    let config = Config::from_arg_matches(&matches).map_err(|e| e.to_string())?;
    let flags = DemoFlags::from_arg_matches(&matches).map_err(|e| e.to_string())?;
    let app = FlashApp::new(&config, &flags, Arc::new(Status::new()), true).map_err(|e| e.to_string())?;
    let Some(len) = text("CONTENT_LENGTH").map_or(Some(0), |s| s.parse::<usize>().ok()) else {
        return Ok(Response::error(400, "CONTENT_LENGTH is not a number"));
    };
    let mut buf = request_head(len);
    // Everything above the shared parser's own limits was already refused by the server.
    let limits = Limits { max_target: usize::MAX, max_head: usize::MAX, max_headers: HEADER_CAP, max_body: u64::MAX };
    let mut head = Head::default();
    let head_len = match parse_head(&buf, &limits, &mut head) {
        Ok(Some(n)) => n,
        Ok(None) => return Ok(Response::error(400, "the CGI variables do not make a complete request")),
        Err(e) => return Ok(Response::error(e.status, e.reason)),
    };
    io::stdin().lock().take(len as u64).read_to_end(&mut buf).map_err(|e| format!("reading the body: {e}"))?;
    if buf.len() - head_len < len {
        return Ok(Response::error(400, "the body is shorter than CONTENT_LENGTH"));
    }
    let req = Request::new(&buf, &head, &buf[head_len..], peer());
    Ok(match app.call(&req) {
        Reply::Now(res) => res,
        Reply::Later(pending) => pending.wait(),
    })
}

/// The request head, as the client would have sent it, from the meta-variables: the request
/// line, every `HTTP_*` variable as a field, and the body's fields.
fn request_head(body_len: usize) -> Vec<u8> {
    let method = text("REQUEST_METHOD").unwrap_or_default();
    let protocol = text("SERVER_PROTOCOL").unwrap_or_else(|| "HTTP/1.1".into());
    let target = text("REQUEST_URI").unwrap_or_else(|| {
        // Another CGI server may not set REQUEST_URI; rebuild the target from its parts.
        let mut path = var_os("SCRIPT_NAME").unwrap_or_default().as_bytes().to_vec();
        path.extend_from_slice(var_os("PATH_INFO").unwrap_or_default().as_bytes());
        let query = text("QUERY_STRING").filter(|q| !q.is_empty()).map(|q| format!("?{q}")).unwrap_or_default();
        format!("{}{query}", percent_encode(&path))
    });
    let mut head = format!("{method} {target} {protocol}\r\n").into_bytes();
    for (name, value) in std::env::vars_os() {
        if let Some(field) = name.as_bytes().strip_prefix(b"HTTP_") {
            head.extend(field.iter().map(|&c| if c == b'_' { b'-' } else { c }));
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
    }
    if let Some(ct) = var_os("CONTENT_TYPE") {
        head.extend_from_slice(b"Content-Type: ");
        head.extend_from_slice(ct.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if body_len > 0 {
        head.extend_from_slice(format!("Content-Length: {body_len}\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// The client's address, from `REMOTE_ADDR` and `REMOTE_PORT` (unspecified if absent).
fn peer() -> SocketAddr {
    let ip = text("REMOTE_ADDR").and_then(|s| s.parse::<IpAddr>().ok()).unwrap_or(IpAddr::from([0, 0, 0, 0]));
    SocketAddr::new(ip, text("REMOTE_PORT").and_then(|s| s.parse().ok()).unwrap_or(0))
}

/// A variable's value as text, if set and valid UTF-8.
fn text(name: &str) -> Option<String> {
    var_os(name).and_then(|v| v.into_string().ok())
}

/// Escapes every byte of `path` that may not appear as-is in a request target.
fn percent_encode(path: &[u8]) -> String {
    let mut out = String::with_capacity(path.len());
    for &c in path {
        if c.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&c) {
            out.push(char::from(c));
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// The field naming the process that answered: every request is a new one, and this is how a
/// reader (or a test) sees it from outside, `curl -si .../hello` twice showing two pids.
const PID_FIELD: &str = "Flash-CGI-PID";

/// Writes `res` as a CGI response. The server adds the framing (`Content-Length`, `Date`).
fn write_response(res: Response, out: &mut impl Write) -> io::Result<()> {
    write!(out, "Status: {} {}\r\n", res.status, reason_phrase(res.status))?;
    write!(out, "{PID_FIELD}: {}\r\n", std::process::id())?;
    if let Some(ct) = &res.content_type {
        write!(out, "Content-Type: {ct}\r\n")?;
    }
    for (name, value) in &res.headers {
        write!(out, "{name}: {value}\r\n")?;
    }
    out.write_all(b"\r\n")?;
    match res.body {
        Body::Empty | Body::HeadOnly(_) => {}
        Body::Static(b) => out.write_all(b)?,
        Body::Bytes(b) => out.write_all(&b)?,
        Body::File { file, len } => {
            io::copy(&mut file.take(len), out)?;
        }
    }
    out.flush()
}
