//! What to send: the target URL, the requests encoded once up front, and the weighted mix.
//!
//! Every request's bytes are built before the first connection opens, so the hot loop only copies
//! ready bytes into a socket buffer: no formatting, no allocation per request. A mix is a list of
//! such encodings with weights, and picking one costs a few arithmetic operations on a tiny
//! pseudo-random generator (statistical quality is irrelevant here; speed and reproducibility are).

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;

/// A parsed `http://host:port/path` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The resolved address the connections go to.
    pub addr: SocketAddr,
    /// The `Host` header value (the URL's authority as written).
    pub host: String,
    /// The path and query, always starting with `/`.
    pub path: String,
}

/// A bad command-line value, with a message that names the flag or the line at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError(pub String);

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

impl Target {
    /// Parses and resolves a URL; only plain `http` is supported, since TLS would measure the
    /// cipher rather than the server's design.
    pub fn parse(url: &str) -> Result<Target, InputError> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            if url.starts_with("https://") {
                InputError(format!("{url}: https is not supported, only http://"))
            } else {
                InputError(format!("{url}: the URL must start with http://"))
            }
        })?;
        // The fragment is for the client alone and never sent (RFC 9110 section 4.2.4), as in curl.
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        // The authority ends at the path or, when there is none, at the query.
        let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        let path = if path.starts_with('/') { path.to_string() } else { format!("/{path}") };
        if let Some((_, host)) = authority.rsplit_once('@') {
            // Named before resolving, where `user@host` would be an unknown host; the URL is not
            // echoed, since it may hold a password.
            return Err(InputError(format!(
                "http://<credentials>@{host}{path}: credentials in the URL are not supported; \
                 send them as a header instead, such as -H 'Authorization: Basic ...'"
            )));
        }
        if authority.is_empty() {
            return Err(InputError(format!("{url}: the URL has no host")));
        }
        let with_port = if authority.ends_with(']') || !authority.contains(':') {
            format!("{authority}:80")
        } else {
            authority.to_string()
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| InputError(format!("{url}: cannot resolve {authority}: {e}")))?
            .next()
            .ok_or_else(|| InputError(format!("{url}: {authority} has no address")))?;
        if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(InputError(format!("{url}: the path has spaces or control characters")));
        }
        Ok(Target { addr, host: authority.to_string(), path })
    }
}

/// One kind of request of a mix, before encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec {
    /// The method, such as `GET`.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// The body, sent with a `Content-Length`.
    pub body: Vec<u8>,
    /// The relative frequency of this request in the mix.
    pub weight: u32,
}

/// One request ready to send.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The whole request, head and body.
    pub bytes: Box<[u8]>,
    /// Whether it is a `HEAD` request, whose response carries no body.
    pub head: bool,
}

/// The requests to send and how often each is chosen.
#[derive(Debug, Clone)]
pub struct RequestSet {
    /// Every distinct request, encoded.
    pub requests: Vec<Encoded>,
    /// Cumulative weights, same order; the last entry is the total.
    cumulative: Vec<u64>,
}

impl RequestSet {
    /// Encodes the specs with the common headers (`Host`, the `-H` extras, and `Connection: close`
    /// when `close` is set so that the server knows it may close first). A `-H` Host replaces the
    /// URL's, as in curl and wrk, since a request with two is a 400; a `-H` Content-Length or
    /// Transfer-Encoding is refused, since the length is computed here from the body and two
    /// framings of one body would make the server misread every request after it.
    pub fn encode(
        target: &Target,
        specs: &[RequestSpec],
        headers: &[String],
        close: bool,
    ) -> Result<RequestSet, InputError> {
        if specs.is_empty() {
            return Err(InputError("the request mix is empty".into()));
        }
        for header in headers {
            let ok = header
                .split_once(':')
                .is_some_and(|(name, _)| !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':'))
                && !header.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0);
            if !ok {
                return Err(InputError(format!("-H {header:?}: a header must look like `Name: value`")));
            }
            if ["content-length", "transfer-encoding"].iter().any(|framing| header_is(header, framing)) {
                return Err(InputError(format!(
                    "-H {header:?}: flash-load frames the body itself (Content-Length from --body, \
                     --body-file or --mix); remove this header"
                )));
            }
        }
        let user_host = headers.iter().any(|header| header_is(header, "host"));
        let mut requests = Vec::with_capacity(specs.len());
        let mut cumulative = Vec::with_capacity(specs.len());
        let mut total = 0u64;
        for spec in specs {
            if spec.method.is_empty() || !spec.method.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(InputError(format!("method {:?}: must be upper-case letters, such as GET", spec.method)));
            }
            if !spec.path.starts_with('/') || spec.path.bytes().any(|b| b <= b' ' || b == 0x7f) {
                return Err(InputError(format!("path {:?}: must start with / and have no spaces", spec.path)));
            }
            let mut head = format!("{} {} HTTP/1.1\r\n", spec.method, spec.path);
            if !user_host {
                head.push_str(&format!("Host: {}\r\n", target.host));
            }
            for header in headers {
                head.push_str(header);
                head.push_str("\r\n");
            }
            if close {
                head.push_str("Connection: close\r\n");
            }
            if !spec.body.is_empty() || matches!(spec.method.as_str(), "POST" | "PUT" | "PATCH") {
                head.push_str(&format!("Content-Length: {}\r\n", spec.body.len()));
            }
            head.push_str("\r\n");
            let mut bytes = head.into_bytes();
            bytes.extend_from_slice(&spec.body);
            requests.push(Encoded { bytes: bytes.into_boxed_slice(), head: spec.method == "HEAD" });
            total += u64::from(spec.weight);
            cumulative.push(total);
        }
        if total == 0 {
            return Err(InputError("the request mix has only zero weights".into()));
        }
        Ok(RequestSet { requests, cumulative })
    }

    /// Picks the next request index; with a single request this never touches the generator.
    #[inline]
    pub fn pick(&self, rng: &mut Rng) -> usize {
        if self.requests.len() == 1 {
            return 0;
        }
        let total = *self.cumulative.last().unwrap_or(&1);
        let x = rng.next_u64() % total;
        self.cumulative.partition_point(|&c| c <= x)
    }
}

/// Whether a `Name: value` header has this (lower-case) name; header names ignore case.
fn header_is(header: &str, name: &str) -> bool {
    header.split_once(':').is_some_and(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// Reads a mix file: one request per line, `METHOD PATH WEIGHT [BODY]`, where the body is the rest
/// of the line taken literally; blank lines and lines starting with `#` are skipped.
pub fn parse_mix(text: &str, source: &Path) -> Result<Vec<RequestSpec>, InputError> {
    let mut specs = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| {
            InputError(format!("{}:{}: {why} (expected `METHOD PATH WEIGHT [BODY]`)", source.display(), number + 1))
        };
        let mut parts = line.splitn(4, char::is_whitespace);
        let method = parts.next().ok_or_else(|| bad("no method"))?;
        let path = parts.next().ok_or_else(|| bad("no path"))?;
        let weight = parts.next().ok_or_else(|| bad("no weight"))?;
        let weight: u32 = weight.parse().map_err(|_| bad("the weight is not a whole number"))?;
        let body = parts.next().unwrap_or("").trim_start().as_bytes().to_vec();
        specs.push(RequestSpec { method: method.to_string(), path: path.to_string(), body, weight });
    }
    if specs.is_empty() {
        return Err(InputError(format!("{}: the mix file has no requests", source.display())));
    }
    Ok(specs)
}

/// A xorshift64* generator: a handful of instructions per number, seeded per connection so that
/// runs are reproducible.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (zero is replaced, since xorshift would stay at zero forever).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next pseudo-random number.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target::parse("http://127.0.0.1:9/hello").unwrap()
    }

    #[test]
    fn parses_urls_and_rejects_https() {
        let t = target();
        assert_eq!(t.addr, "127.0.0.1:9".parse().unwrap());
        assert_eq!((t.host.as_str(), t.path.as_str()), ("127.0.0.1:9", "/hello"));
        assert_eq!(Target::parse("http://127.0.0.1").unwrap().path, "/");
        assert!(Target::parse("https://127.0.0.1/").unwrap_err().0.contains("https"));
        assert!(Target::parse("127.0.0.1:80").is_err());
    }

    #[test]
    fn urls_are_split_as_curl_splits_them() {
        let parse = |url: &str| {
            let t = Target::parse(url).unwrap();
            (t.host, t.path)
        };
        let host = || "127.0.0.1:9".to_string();
        // The fragment is the client's own: it is never sent.
        assert_eq!(parse("http://127.0.0.1:9/hello#frag"), (host(), "/hello".into()));
        assert_eq!(parse("http://127.0.0.1:9/a?x=1#f?g/h"), (host(), "/a?x=1".into()));
        assert_eq!(parse("http://127.0.0.1:9#frag"), (host(), "/".into()));
        // A query with no path asks for the root.
        assert_eq!(parse("http://127.0.0.1:9?x=1"), (host(), "/?x=1".into()));
        assert_eq!(parse("http://127.0.0.1?x=1").0, "127.0.0.1");
        assert_eq!(Target::parse("http://127.0.0.1?x=1").unwrap().addr, "127.0.0.1:80".parse().unwrap());
        // An `@` in the path is not userinfo.
        assert_eq!(parse("http://127.0.0.1:9/a@b"), (host(), "/a@b".into()));
        assert_eq!(parse("http://[::1]:9/v6").1, "/v6");
    }

    #[test]
    fn credentials_in_the_url_are_refused_clearly() {
        for url in ["http://user@127.0.0.1/", "http://user:secret@127.0.0.1:9/x", "http://@127.0.0.1?q"] {
            let err = Target::parse(url).unwrap_err().0;
            assert!(err.contains("credentials in the URL are not supported"), "{url}: {err}");
            assert!(!err.contains("secret"), "the password is not echoed: {err}");
        }
    }

    #[test]
    fn a_user_host_header_replaces_the_default_one() {
        let get = RequestSpec { method: "GET".into(), path: "/".into(), body: vec![], weight: 1 };
        let set =
            RequestSet::encode(&target(), &[get], &["hOsT: example.test".into(), "X-A: b".into()], false).unwrap();
        let text = String::from_utf8(set.requests[0].bytes.to_vec()).unwrap();
        assert_eq!(text, "GET / HTTP/1.1\r\nhOsT: example.test\r\nX-A: b\r\n\r\n");
    }

    #[test]
    fn a_user_length_header_is_refused() {
        let post = RequestSpec { method: "POST".into(), path: "/".into(), body: b"abc".to_vec(), weight: 1 };
        for header in ["Content-Length: 3", "content-length:3", "Transfer-Encoding: chunked"] {
            let err =
                RequestSet::encode(&target(), std::slice::from_ref(&post), &[header.into()], false).unwrap_err().0;
            assert!(err.starts_with("-H ") && err.contains(header), "{header}: {err}");
        }
    }

    #[test]
    fn encodes_requests_with_length_and_close() {
        let spec = RequestSpec { method: "POST".into(), path: "/echo".into(), body: b"abc".to_vec(), weight: 1 };
        let set = RequestSet::encode(&target(), &[spec], &["X-A: b".into()], true).unwrap();
        let text = String::from_utf8(set.requests[0].bytes.to_vec()).unwrap();
        assert_eq!(
            text,
            "POST /echo HTTP/1.1\r\nHost: 127.0.0.1:9\r\nX-A: b\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc"
        );
        assert!(RequestSet::encode(&target(), &[], &[], false).is_err());
        let get = RequestSpec { method: "GET".into(), path: "/".into(), body: vec![], weight: 1 };
        assert!(RequestSet::encode(&target(), &[get], &["bad header".into()], false).is_err());
    }

    #[test]
    fn mix_weights_are_respected() {
        let specs = parse_mix("# comment\nGET /a 3\n\nPOST /b 1 {\"data\": 1}\n", Path::new("mix")).unwrap();
        assert_eq!(specs[1].body, b"{\"data\": 1}");
        let set = RequestSet::encode(&target(), &specs, &[], false).unwrap();
        let mut rng = Rng::new(7);
        let picks_of_a = (0..40_000).filter(|_| set.pick(&mut rng) == 0).count();
        assert!((28_000..32_000).contains(&picks_of_a), "{picks_of_a} of 40000 should be about 30000");
        let err = parse_mix("GET /a lots\n", Path::new("mix")).unwrap_err();
        assert!(err.0.contains("mix:1"), "{err}");
    }
}
