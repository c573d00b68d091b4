//! Static files: the part of a web server that touches the file system, so the part that must
//! never serve a byte from outside its root.
//!
//! The path is split into segments, each segment percent-decoded, and rejoined under the root; in
//! that order, so that `%2F` is a character of a segment (one no file name can hold) and never a
//! segment break. `..`, NUL bytes and backslashes are refused after decoding, before the file
//! system is asked anything, and the final path is canonicalized and checked to still be under
//! the root, which catches symlinks that point out. (The path arrives with its encoded unreserved
//! characters already decoded, `/%68%65llo` as `/hello`, by `Request::path`, as routing saw it.)
//! Conditional (`If-Modified-Since`) and single-range (`Range`) requests are answered as nginx
//! answers them.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use flash_common::date::{http_date, parse_http_date};
use flash_common::request::{percent_decode, Request};
use flash_common::{Body, Response};

/// Serves the file `req` names under `root` (already canonical).
pub fn serve(root: &Path, req: &Request<'_>) -> Response {
    let method = req.method();
    let path = match resolve(root, req.path()) {
        Ok(p) => p,
        Err(res) => return res,
    };
    if method != "GET" && method != "HEAD" {
        return Response::error(405, "static files allow GET, HEAD").with_header("Allow", "GET, HEAD");
    }
    let path = if path.is_dir() {
        if !req.path().ends_with('/') {
            // Relative links in the index page resolve against the directory only with the slash.
            let location = match req.query() {
                Some(q) => format!("{}/?{q}", req.path()),
                None => format!("{}/", req.path()),
            };
            return Response::error(301, "this is a directory").with_header("Location", location);
        }
        match path.join("index.html") {
            p if p.is_file() => p,
            _ => return Response::error(403, "directory has no index.html"),
        }
    } else {
        path
    };
    match open(&path, req) {
        Ok(res) => res,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Response::error(403, "permission denied"),
        Err(_) => Response::error(404, "no such file"),
    }
}

/// Turns the request path into a file system path under `root`, or the response refusing it.
fn resolve(root: &Path, raw: &str) -> Result<PathBuf, Response> {
    if !raw.starts_with('/') {
        return Err(Response::error(400, "the path must start with /"));
    }
    let mut segments = Vec::new();
    for raw_seg in raw.split('/') {
        let seg =
            percent_decode(raw_seg).ok_or_else(|| Response::error(400, "malformed percent-encoding in the path"))?;
        if seg.contains(&0) || seg.contains(&b'\\') {
            return Err(Response::error(403, "forbidden character in the path"));
        }
        segments.push(seg);
    }
    let mut path = root.to_path_buf();
    for seg in segments.iter().filter(|s| !s.is_empty() && *s != b".") {
        if seg == b".." {
            return Err(Response::error(403, "the path may not leave the document root"));
        }
        if seg.contains(&b'/') {
            return Err(Response::error(404, "no such file (an encoded / is part of a name, and no name holds one)"));
        }
        path.push(std::str::from_utf8(seg).map_err(|_| Response::error(404, "no such file"))?);
    }
    // Canonicalizing resolves symlinks; whatever they point at must still be under the root.
    let real = path.canonicalize().map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => Response::error(403, "permission denied"),
        _ => Response::error(404, "no such file"),
    })?;
    if !real.starts_with(root) {
        return Err(Response::error(403, "the path may not leave the document root"));
    }
    Ok(real)
}

/// Opens the file and answers 200, 206, 304 or 416.
fn open(path: &Path, req: &Request<'_>) -> io::Result<Response> {
    let mut file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(Response::error(404, "not a regular file"));
    }
    let len = meta.len();
    let mtime = meta.modified()?.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let content_type = content_type(path);
    let base = |status: u16| {
        Response::new(status).with_header("Last-Modified", http_date(mtime)).with_header("Accept-Ranges", "bytes")
    };

    if let Some(since) = req.header_str("if-modified-since").and_then(parse_http_date) {
        if mtime <= since {
            return Ok(base(304));
        }
    }
    // A Range with If-Range is served whole: we keep no validators to compare it with, and the
    // whole file is always a correct answer.
    let range = req.header_str("range").filter(|_| req.header("if-range").is_none());
    match range.map(|r| parse_range(r, len)) {
        Some(RangeSpec::Satisfiable(first, last)) => {
            file.seek(SeekFrom::Start(first))?;
            let body = Body::File { file, len: last - first + 1 };
            Ok(base(206)
                .with_header("Content-Range", format!("bytes {first}-{last}/{len}"))
                .with_body(content_type, body))
        }
        Some(RangeSpec::Unsatisfiable) => {
            Ok(Response::error(416, "range not satisfiable").with_header("Content-Range", format!("bytes */{len}")))
        }
        Some(RangeSpec::Ignore) | None => Ok(base(200).with_body(content_type, Body::File { file, len })),
    }
}

/// What a `Range` header asks for.
#[derive(Debug, PartialEq, Eq)]
enum RangeSpec {
    /// Bytes `first..=last`.
    Satisfiable(u64, u64),
    /// A valid range that lies outside the file.
    Unsatisfiable,
    /// Not something we answer with 206 (several ranges, another unit, bad syntax): send it all.
    Ignore,
}

/// Parses a single `bytes=` range (RFC 9110 §14.1.2).
fn parse_range(header: &str, len: u64) -> RangeSpec {
    let Some(spec) = header.trim().strip_prefix("bytes=") else { return RangeSpec::Ignore };
    if spec.contains(',') {
        return RangeSpec::Ignore;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return RangeSpec::Ignore };
    let num = |s: &str| s.trim().parse::<u64>().ok();
    let (first, last) = match (a.trim(), b.trim()) {
        ("", "") => return RangeSpec::Ignore,
        ("", suffix) => match num(suffix) {
            Some(0) => return RangeSpec::Unsatisfiable,
            Some(n) => (len.saturating_sub(n), len.saturating_sub(1)),
            None => return RangeSpec::Ignore,
        },
        (first, "") => match num(first) {
            Some(f) => (f, len.saturating_sub(1)),
            None => return RangeSpec::Ignore,
        },
        (first, last) => match (num(first), num(last)) {
            (Some(f), Some(l)) if f <= l => (f, l.min(len.saturating_sub(1))),
            _ => return RangeSpec::Ignore,
        },
    };
    if len == 0 || first >= len {
        RangeSpec::Unsatisfiable
    } else {
        RangeSpec::Satisfiable(first, last)
    }
}

/// The content type for a file, by its extension.
fn content_type(path: &Path) -> &'static str {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "txt" | "md" => "text/plain; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), RangeSpec::Satisfiable(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), RangeSpec::Satisfiable(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), RangeSpec::Satisfiable(90, 99));
        assert_eq!(parse_range("bytes=50-500", 100), RangeSpec::Satisfiable(50, 99));
        assert_eq!(parse_range("bytes=100-", 100), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), RangeSpec::Ignore);
        assert_eq!(parse_range("items=0-1", 100), RangeSpec::Ignore);
        assert_eq!(parse_range("bytes=5-1", 100), RangeSpec::Ignore);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("/a%20b").unwrap(), b"/a b");
        assert_eq!(percent_decode("/%2e%2e/").unwrap(), b"/../");
        assert!(percent_decode("/%zz").is_none());
        assert!(percent_decode("/%2").is_none());
        assert!(percent_decode("/%+1").is_none());
    }

    /// Each segment is decoded on its own: `%2F` never splits one, `..` is refused after decoding,
    /// and a whole `..` segment is refused before any file is looked at.
    #[test]
    fn segments_are_decoded_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("d")).unwrap();
        std::fs::write(root.join("d").join("f.txt"), "x").unwrap();
        let status = |raw: &str| resolve(&root, raw).map_or_else(|res| res.status, |_| 200);
        assert_eq!(status("/d/f.txt"), 200);
        assert_eq!(status("/d/f%2Etxt"), 200);
        assert_eq!(status("/%64/f.txt"), 200);
        assert_eq!(status("/d%2Ff.txt"), 404);
        assert_eq!(status("/d%2ff.txt"), 404);
        assert_eq!(status("/d/%2e%2e/d/f.txt"), 403);
        assert_eq!(status("/%2e%2e%2Fd"), 404);
        assert_eq!(status("/d/f.txt%00"), 403);
        assert_eq!(status("/d%5Cf.txt"), 403);
        assert_eq!(status("/d/%zz"), 400);
    }
}
