//! CGI/1.1 (RFC 3875): which program answers a request, what it is told, and how its output
//! becomes a [`Response`]. The processes themselves are `spawn`'s business.
//!
//! A request under `/cgi-bin/` runs a script from `--cgi-dir`; anything else runs `flash-cgi`,
//! Flash's application as a CGI program, so that every route behaves as on the other servers.
//! Only `/server-status` is answered in the server, because it reports on the server's own
//! process, which no child can see.
//!
//! Both directions are checked as a real CGI server must. In: a script path never leaves
//! `--cgi-dir` (`..` is refused, symlinks are resolved and the result checked) and must be an
//! executable file; the `Proxy` header never becomes `HTTP_PROXY` ("httpoxy": many HTTP
//! libraries take that variable as their proxy, so a client could reroute the script's own
//! outgoing requests). Out: the header block must be well formed, fields the connection writes
//! itself (framing) are dropped, and a script that dies, babbles or hangs costs its client a
//! 502 or a 504, never the server.

use std::borrow::Cow;
use std::ffi::{CString, OsStr};
use std::io;
use std::net::SocketAddr;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flash_common::parse::{is_tchar, trim};
use flash_common::request::percent_decode;
use flash_common::{Body, Reply, Request, Response, Site};
use nix::sys::wait::WaitStatus;
use nix::unistd::{access, AccessFlags};

use crate::spawn::{self, Failure, Finished, Program};

/// The URL prefix mapped to `--cgi-dir`.
const CGI_BIN: &[u8] = b"/cgi-bin";
/// The most output accepted from one program; a sequential server holds it in memory.
const MAX_OUTPUT: usize = 64 << 20;
/// The longest CGI header block accepted.
const MAX_HEAD: usize = 64 * 1024;
/// How many local redirects (`Location: /path`) one request may follow before it is a loop.
const MAX_LOCAL_REDIRECTS: usize = 5;
/// The search path scripts get: scripts people write call `env`, `sort` or `python3` by name.
const SCRIPT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Everything needed to run CGI programs, prepared once before the first client.
pub struct Cgi {
    /// The site, for `/server-status`, which the server answers itself.
    site: Site,
    /// `--cgi-dir`, canonical: no script may resolve outside it.
    dir: PathBuf,
    /// The `flash-cgi` program, which answers everything outside `/cgi-bin/`.
    app: CString,
    /// The variables that are the same for every request and every program.
    fixed: Vec<CString>,
    /// What `flash-cgi` needs besides the request: the configuration it cannot parse itself.
    app_env: Vec<CString>,
    /// The document root, canonical, for `PATH_TRANSLATED`.
    docroot: PathBuf,
    /// The address the server listens on (`SERVER_NAME` when the client sent no `Host`).
    local: SocketAddr,
    /// `--cgi-timeout`: how long one program may run.
    timeout: Duration,
}

/// What running a program came to.
pub enum Answer {
    /// A response for the client.
    Response(Response),
    /// A local redirect: answer the request as if the client had asked for this path.
    LocalRedirect(String),
}

impl Cgi {
    /// Finds the scripts and `flash-cgi`, and prepares the variables that never change. Fails
    /// with a message naming the flag (or variable) when something is missing.
    pub fn new(site: &Site, local: SocketAddr) -> io::Result<Cgi> {
        let config = site.config();
        let dir = config.cgi_dir.clone().unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("cgi-bin"));
        let dir =
            dir.canonicalize().map_err(|e| io::Error::new(e.kind(), format!("--cgi-dir {}: {e}", dir.display())))?;
        let docroot = config.docroot();
        let docroot = docroot
            .canonicalize()
            .map_err(|e| io::Error::new(e.kind(), format!("--docroot {}: {e}", docroot.display())))?;
        // The application says what a copy of it must be told; the server only passes it on.
        let app_env = site
            .app()
            .environment()
            .iter()
            .map(|(name, value)| var(name, value.as_bytes()))
            .collect::<io::Result<_>>()?;
        let fixed = vec![
            var("GATEWAY_INTERFACE", b"CGI/1.1")?,
            var("SERVER_SOFTWARE", concat!("flash/", env!("CARGO_PKG_VERSION")).as_bytes())?,
            var("SERVER_PORT", local.port().to_string().as_bytes())?,
            var("PATH", SCRIPT_PATH.as_bytes())?,
        ];
        let app = app_program()?;
        let app = CString::new(app.into_os_string().into_vec()).map_err(io::Error::other)?;
        Ok(Cgi { site: site.clone(), dir, app, fixed, app_env, docroot, local, timeout: config.cgi_timeout })
    }

    /// Answers one request with a child process.
    pub fn answer(&self, req: &Request<'_>) -> Reply {
        if req.path() == "/server-status" {
            return self.site.call(req);
        }
        let mut call = Call::new(req);
        for _ in 0..=MAX_LOCAL_REDIRECTS {
            match self.run(&call) {
                Ok(Answer::Response(res)) => return Reply::Now(res),
                Ok(Answer::LocalRedirect(target)) => call = call.redirect(target),
                Err(res) => return Reply::Now(res),
            }
        }
        Reply::Now(Response::error(500, "too many local redirects (a loop?)"))
    }

    /// Runs the program that answers `call` and interprets what it wrote.
    fn run(&self, call: &Call<'_>) -> Result<Answer, Response> {
        let path = percent_decode(call.path())
            .ok_or_else(|| Response::error(400, "malformed percent-encoding in the path"))?;
        // A NUL cannot go into an environment variable; the application refuses it alike.
        if path.contains(&0) {
            return Err(Response::error(403, "forbidden character in the path"));
        }
        let script = match path.strip_prefix(CGI_BIN).filter(|rest| rest.is_empty() || rest.starts_with(b"/")) {
            Some(rest) => Some(self.find_script(rest)?),
            None => None,
        };
        let env = match &script {
            Some(s) => self.environment(call, &s.name, &s.path_info, false)?,
            // The application answers every path, so the whole path is its PATH_INFO.
            None => self.environment(call, b"", &path, true)?,
        };
        let (program, cwd) = match &script {
            Some(s) => (
                cstring(s.path.as_os_str().as_bytes())?,
                Some(cstring(s.path.parent().unwrap_or(&s.path).as_os_str().as_bytes())?),
            ),
            None => (self.app.clone(), None),
        };
        let program = Program { path: &program, env: &env, cwd: cwd.as_deref() };
        let deadline = Instant::now() + self.timeout;
        let finished = match spawn::run(&program, call.body, deadline, MAX_OUTPUT) {
            Ok(f) => f,
            Err(Failure::TimedOut) => {
                return Err(Response::error(504, "the CGI program did not finish within --cgi-timeout"))
            }
            Err(Failure::TooLarge) => return Err(Response::error(502, "the CGI program wrote more than 64 MiB")),
            Err(Failure::Io(e)) => {
                flash_common::log_line!("flash: cannot run {:?}: {e}", program.path);
                return Err(Response::error(500, "the CGI program could not be started"));
            }
        };
        let nph = script.as_ref().is_some_and(|s| s.nph);
        let parsed = if nph { parse_nph(finished) } else { parse_cgi(finished) };
        parsed.map_err(|reason| {
            flash_common::log_line!("flash: {:?}: {reason}", program.path);
            Response::error(502, &reason)
        })
    }

    /// Maps `rest` (the decoded path after `/cgi-bin`) to a script in `--cgi-dir`: the first
    /// segment that is a file is the script, and what follows it is `PATH_INFO`.
    fn find_script(&self, rest: &[u8]) -> Result<Script, Response> {
        if rest.split(|&c| c == b'/').any(|seg| seg == b".." || seg == b".") {
            return Err(Response::error(403, "the path may not contain . or .. segments"));
        }
        let mut candidate = self.dir.clone();
        let mut end = 0;
        while end < rest.len() {
            let start = end + 1;
            end = rest[start..].iter().position(|&c| c == b'/').map_or(rest.len(), |i| start + i);
            if start == end {
                continue;
            }
            candidate.push(OsStr::from_bytes(&rest[start..end]));
            // Canonicalizing resolves symlinks; the result must still be inside --cgi-dir.
            let real = candidate.canonicalize().map_err(|_| Response::error(404, "no such CGI script"))?;
            if !real.starts_with(&self.dir) {
                return Err(Response::error(403, "the script is outside --cgi-dir"));
            }
            if real.is_dir() {
                continue;
            }
            if !real.is_file() || access(&real, AccessFlags::X_OK).is_err() {
                return Err(Response::error(403, "not an executable CGI script"));
            }
            let nph = rest[start..end].starts_with(b"nph-");
            let name = [CGI_BIN, &rest[..end]].concat();
            return Ok(Script { path: real, name, path_info: rest[end..].to_vec(), nph });
        }
        Err(Response::error(403, "name a script: /cgi-bin/NAME"))
    }

    /// The meta-variables of RFC 3875 §4.1 for `call`, plus `REQUEST_URI` (a common extension
    /// that `flash-cgi` uses to rebuild the exact target) and, for the application, its
    /// configuration.
    fn environment(
        &self,
        call: &Call<'_>,
        script_name: &[u8],
        path_info: &[u8],
        app: bool,
    ) -> Result<Vec<CString>, Response> {
        let mut env = self.fixed.clone();
        let mut add = |name: &str, value: &[u8]| -> Result<(), Response> {
            env.push(var(name, value).map_err(|_| Response::error(400, "a NUL byte in the request"))?);
            Ok(())
        };
        add("SERVER_PROTOCOL", if call.minor == 0 { b"HTTP/1.0" } else { b"HTTP/1.1" })?;
        add("SERVER_NAME", &server_name(call.host.as_bytes(), self.local))?;
        add("REQUEST_METHOD", call.method.as_bytes())?;
        add("SCRIPT_NAME", script_name)?;
        if !path_info.is_empty() {
            add("PATH_INFO", path_info)?;
            add("PATH_TRANSLATED", &[self.docroot.as_os_str().as_bytes(), path_info].concat())?;
        }
        add("QUERY_STRING", call.query().unwrap_or("").as_bytes())?;
        add("REQUEST_URI", call.target.as_bytes())?;
        add("REMOTE_ADDR", call.peer.ip().to_string().as_bytes())?;
        add("REMOTE_PORT", call.peer.port().to_string().as_bytes())?;
        if let Some(ct) = call.header("content-type") {
            add("CONTENT_TYPE", ct)?;
        }
        if !call.body.is_empty() {
            add("CONTENT_LENGTH", call.body.len().to_string().as_bytes())?;
        }
        // Repeated fields become one variable, their values joined with commas (§4.1.18).
        let mut http: Vec<(String, Vec<u8>)> = Vec::new();
        for (name, value) in &call.headers {
            let Some(var_name) = http_variable(name) else { continue };
            match http.iter_mut().find(|(n, _)| *n == var_name) {
                Some((_, v)) => v.extend_from_slice(&[b", ", *value].concat()),
                None => http.push((var_name, value.to_vec())),
            }
        }
        for (name, value) in &http {
            add(name, value)?;
        }
        if app {
            env.extend(self.app_env.iter().cloned());
        }
        Ok(env)
    }
}

/// A script found in `--cgi-dir`.
struct Script {
    /// Its canonical path.
    path: PathBuf,
    /// `SCRIPT_NAME`: the URL path that named it, decoded.
    name: Vec<u8>,
    /// `PATH_INFO`: what followed the script's name in the path, decoded.
    path_info: Vec<u8>,
    /// A non-parsed-header script (its name starts with `nph-`): it writes the status line too.
    nph: bool,
}

/// The request as the CGI layer sees it: the client's, or one rewritten by a local redirect.
struct Call<'a> {
    /// The method.
    method: &'a str,
    /// The target, path and query, as sent (or as the redirecting script wrote it).
    target: Cow<'a, str>,
    /// The host the request is for (an absolute-form target's authority, else `Host`), or empty.
    host: &'a str,
    /// The HTTP minor version.
    minor: u8,
    /// The header fields, in order.
    headers: Vec<(&'a str, &'a [u8])>,
    /// The decoded body.
    body: &'a [u8],
    /// The client's address.
    peer: SocketAddr,
}

impl<'a> Call<'a> {
    fn new(req: &Request<'a>) -> Call<'a> {
        let (method, target, host, minor) = (req.method(), req.target(), req.host(), req.minor_version());
        Call { method, target, host, minor, headers: req.headers().collect(), body: req.body(), peer: req.peer() }
    }

    /// The same client asking for `target` with a GET, as RFC 3875 §6.2.2 has the server do.
    fn redirect(mut self, target: String) -> Call<'a> {
        self.method = "GET";
        self.target = Cow::Owned(target);
        self.body = b"";
        self.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case("content-type") && !n.eq_ignore_ascii_case("content-length"));
        self
    }

    fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
    }
}

/// The `HTTP_*` variable for a request field, or `None` for fields that must not become one:
/// `Proxy` (httpoxy), credentials (§4.1.18 asks servers to withhold them), the body's fields
/// (they are `CONTENT_TYPE` and `CONTENT_LENGTH`, and the body was already de-chunked), and
/// names with `_`, which would collide with the `-` spelling of another field (nginx drops
/// them too).
fn http_variable(name: &str) -> Option<String> {
    const WITHHELD: [&str; 6] =
        ["proxy", "authorization", "proxy-authorization", "content-type", "content-length", "transfer-encoding"];
    if WITHHELD.iter().any(|w| name.eq_ignore_ascii_case(w))
        || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
    {
        return None;
    }
    Some(format!("HTTP_{}", name.to_ascii_uppercase().replace('-', "_")))
}

/// `SERVER_NAME`: the host the request is for without its port, else the address we listen on.
fn server_name(host: &[u8], local: SocketAddr) -> Vec<u8> {
    match host {
        [b'[', ..] => host[..host.iter().position(|&c| c == b']').map_or(host.len(), |i| i + 1)].to_vec(),
        [] | [b':', ..] => local.ip().to_string().into_bytes(),
        _ => host[..host.iter().position(|&c| c == b':').unwrap_or(host.len())].to_vec(),
    }
}

/// Interprets `output` as what a CGI program (`nph` false) or a non-parsed-header script wrote,
/// as if it had exited with status 0; an error is the reason its client's 502 would give. The
/// smallest way in to the header parser from outside, for the fuzz target
/// (`fuzz/fuzz_targets/cgi.rs`): a real program is not needed to find what its output can do.
pub fn parse_output(output: Vec<u8>, nph: bool) -> Result<Answer, String> {
    let finished = Finished { output, status: WaitStatus::Exited(nix::unistd::Pid::from_raw(0), 0) };
    if nph {
        parse_nph(finished)
    } else {
        parse_cgi(finished)
    }
}

/// A CGI response (§6): a header block, a blank line, the body.
fn parse_cgi(finished: Finished) -> Result<Answer, String> {
    let Finished { mut output, status } = finished;
    let fields = parse_fields(&output, 0).map_err(|e| explain(e, &output, status))?;
    if fields.status.is_none() && fields.content_type.is_none() && fields.location.is_none() {
        return Err("the CGI header block has no Content-Type, Status or Location".into());
    }
    if let (Some(location), None) = (&fields.location, fields.status) {
        if location.starts_with('/') {
            return Ok(Answer::LocalRedirect(location.clone()));
        }
    }
    // A client redirect without a Status is a 302 (§6.2.3).
    let code = fields.status.unwrap_or(if fields.location.is_some() { 302 } else { 200 });
    output.drain(..fields.body_start);
    Ok(Answer::Response(fields.into_response(code, output)))
}

/// A non-parsed-header response: the script wrote the status line too. It is passed on as
/// written except for the framing fields, which the connection writes; the connection then
/// closes, as the script, answering as if it owned the connection, may have expected.
fn parse_nph(finished: Finished) -> Result<Answer, String> {
    let Finished { mut output, status } = finished;
    let line_end = output.iter().position(|&c| c == b'\n').ok_or_else(|| explain("no status line", &output, status))?;
    let line = output[..line_end].strip_suffix(b"\r").unwrap_or(&output[..line_end]);
    let code = match line {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', b'0' | b'1', b' ', code @ ..] => parse_status(code),
        _ => None,
    }
    .ok_or("the nph script's first line is not an HTTP/1.x status line with a code from 200 to 599")?;
    let fields = parse_fields(&output, line_end + 1).map_err(|e| explain(e, &output, status))?;
    output.drain(..fields.body_start);
    Ok(Answer::Response(fields.into_response(code, output).closing()))
}

/// Says what went wrong in words an operator can act on, mentioning how the program ended.
fn explain(problem: &str, output: &[u8], status: WaitStatus) -> String {
    let ended = match status {
        WaitStatus::Exited(_, code) => format!("exited with status {code}"),
        WaitStatus::Signaled(_, sig, _) => format!("was killed by {sig}"),
        other => format!("ended ({other:?})"),
    };
    if output.is_empty() {
        format!("the CGI program {ended} without writing a response")
    } else {
        format!("malformed CGI response ({problem}); the program {ended}")
    }
}

/// The fields of a CGI header block.
#[derive(Default)]
struct Fields {
    /// `Status:`, the code only.
    status: Option<u16>,
    /// `Content-Type:`.
    content_type: Option<String>,
    /// `Location:`.
    location: Option<String>,
    /// Every other field, passed on to the client.
    headers: Vec<(Cow<'static, str>, String)>,
    /// Where the body starts in the output.
    body_start: usize,
}

impl Fields {
    fn into_response(self, code: u16, body: Vec<u8>) -> Response {
        let mut res = Response::new(code);
        res.content_type = self.content_type.map(Cow::Owned);
        res.headers = self.headers;
        if let Some(location) = self.location {
            res.headers.push(("Location".into(), location));
        }
        res.body = if body.is_empty() { Body::Empty } else { Body::Bytes(body) };
        res
    }
}

/// Parses header lines from `output[start..]` up to the blank line. Lines may end in CRLF or LF
/// (scripts print either).
fn parse_fields(output: &[u8], start: usize) -> Result<Fields, &'static str> {
    let mut fields = Fields::default();
    let mut pos = start;
    loop {
        let window = &output[pos..output.len().min(start + MAX_HEAD)];
        let Some(nl) = window.iter().position(|&c| c == b'\n') else {
            return Err(if output.len() > start + MAX_HEAD {
                "header block over 64 KiB"
            } else {
                "no blank line after the header block"
            });
        };
        let line = &window[..nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos += nl + 1;
        if line.is_empty() {
            fields.body_start = pos;
            return Ok(fields);
        }
        let colon = line.iter().position(|&c| c == b':').ok_or("a header line without a colon")?;
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.is_empty() || !name.iter().all(|&c| is_tchar(c)) {
            return Err("an invalid header field name");
        }
        // A CR or other control byte would let the script inject lines into our response head.
        if value.iter().any(|&c| (c < 0x20 && c != b'\t') || c == 0x7f) {
            return Err("a control character in a header field value");
        }
        let name = std::str::from_utf8(name).map_err(|_| "an invalid header field name")?;
        let value = String::from_utf8_lossy(value).into_owned();
        match name.to_ascii_lowercase().as_str() {
            "status" => {
                fields.status = Some(parse_status(value.as_bytes()).ok_or("Status is not a code from 200 to 599")?)
            }
            "content-type" => fields.content_type = Some(value),
            "location" => fields.location = Some(value),
            // The connection writes these itself; a script's copy could only contradict it.
            "content-length" | "transfer-encoding" | "connection" | "keep-alive" | "date" | "server" => {}
            _ => fields.headers.push((Cow::Owned(name.to_string()), value)),
        }
    }
}

/// `NNN` or `NNN reason`, with NNN from 200 to 599 (1xx cannot be relayed as a final answer).
fn parse_status(s: &[u8]) -> Option<u16> {
    let digits = s.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) || s.get(3).is_some_and(|&c| c != b' ') {
        return None;
    }
    let code = digits.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    (200..=599).contains(&code).then_some(code)
}

/// `NAME=value` for an environment.
fn var(name: &str, value: &[u8]) -> io::Result<CString> {
    CString::new([name.as_bytes(), b"=", value].concat()).map_err(io::Error::other)
}

fn cstring(bytes: &[u8]) -> Result<CString, Response> {
    CString::new(bytes).map_err(|_| Response::error(400, "a NUL byte in the path"))
}

/// The `flash-cgi` program: `FLASH_CGI_BIN` if set, else the one next to the running executable,
/// else one folder up (where cargo puts binaries when the running one is a test in `deps/`).
fn app_program() -> io::Result<PathBuf> {
    if let Some(path) = std::env::var_os("FLASH_CGI_BIN") {
        return Path::new(&path)
            .canonicalize()
            .map_err(|e| io::Error::new(e.kind(), format!("FLASH_CGI_BIN {path:?}: {e}")));
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().unwrap_or(Path::new("/"));
    [dir.join("flash-cgi"), dir.join("../flash-cgi")].into_iter().find(|p| p.is_file()).map_or_else(
        || {
            let msg = format!("cannot find flash-cgi next to {}; build it or set FLASH_CGI_BIN", exe.display());
            Err(io::Error::new(io::ErrorKind::NotFound, msg))
        },
        |p| p.canonicalize(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(output: &[u8]) -> Response {
        match parse_output(output.to_vec(), false) {
            Ok(Answer::Response(r)) => r,
            Ok(Answer::LocalRedirect(to)) => panic!("a local redirect to {to}"),
            Err(e) => panic!("refused: {e}"),
        }
    }

    #[test]
    fn document_with_status_and_extra_fields() {
        let r = response(b"Status: 201 Created\nContent-Type: text/plain\nX-Thing: a b\nContent-Length: 99\n\nhi");
        assert_eq!(r.status, 201);
        assert_eq!(r.content_type.as_deref(), Some("text/plain"));
        assert_eq!(r.headers, vec![(Cow::Borrowed("X-Thing"), "a b".to_string())]);
        assert_eq!(r.body.len(), 2);
    }

    #[test]
    fn redirects_local_and_client() {
        assert!(
            matches!(parse_output(b"Location: /hello\r\n\r\n".to_vec(), false), Ok(Answer::LocalRedirect(t)) if t == "/hello")
        );
        let r = response(b"Location: http://example.com/\r\n\r\n");
        assert_eq!((r.status, r.headers[0].1.as_str()), (302, "http://example.com/"));
        assert_eq!(response(b"Status: 301\r\nLocation: /dir/\r\n\r\n").status, 301);
    }

    #[test]
    fn malformed_output_is_refused() {
        for bad in [
            &b""[..],
            b"Content-Type: text/plain\n",
            b"no colon\n\n",
            b"X-A: 1\n\n",
            b"Status: 99\n\n",
            b"Bad Name: x\n\n",
            b"X: a\rb\n\n",
        ] {
            assert!(parse_output(bad.to_vec(), false).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn nph_status_line() {
        match parse_output(b"HTTP/1.1 418 Teapot\r\nContent-Type: text/plain\r\n\r\nshort".to_vec(), true) {
            Ok(Answer::Response(r)) => assert!(r.status == 418 && r.close && r.body.len() == 5),
            _ => panic!("an nph response was refused"),
        }
        assert!(parse_output(b"Status: 200\r\n\r\n".to_vec(), true).is_err());
    }

    #[test]
    fn variables_and_names() {
        assert_eq!(http_variable("X-Forwarded-For").as_deref(), Some("HTTP_X_FORWARDED_FOR"));
        assert_eq!(http_variable("Proxy"), None);
        assert_eq!(http_variable("x_forwarded_for"), None);
        let local: SocketAddr = "127.0.0.1:80".parse().unwrap();
        assert_eq!(server_name(b"example.com:8080", local), b"example.com");
        assert_eq!(server_name(b"[::1]:8080", local), b"[::1]");
        assert_eq!(server_name(b"", local), b"127.0.0.1");
        assert_eq!(server_name(b":8080", local), b"127.0.0.1");
    }
}
