//! The one HTTP/1.1 request parser: `httparse` for the tokens, this file for everything
//! RFC 9112 and RFC 9110 say a server must decide about them.
//!
//! `httparse` checks the grammar of the request line and the header fields (so bare CR, obs-fold,
//! whitespace before the colon and invalid tokens are already errors). What it leaves to us, and
//! what this file does, is the *meaning*: how long the body is (§6 of RFC 9112: `Content-Length`
//! versus `Transfer-Encoding`), whether the connection stays open, `Host`, `Expect`, which methods
//! exist, and the size limits that keep a hostile client from using up memory. And what the
//! tokenizer is lenient about where two parsers that disagree let a request be smuggled: it takes
//! a bare LF for a line end and any byte from 0x80 up into a target, and does not look inside the
//! target or `Host`; this file refuses all of that (RFC 9112 §2.2, §3.2).
//!
//! The parser never copies the head. [`Head`] stores *spans* (offsets into the caller's buffer),
//! and its header list is a `Vec` the caller keeps from one request to the next, so parsing a
//! request allocates nothing once a connection has warmed up (`tests/alloc.rs` counts).

use std::mem::MaybeUninit;

/// The most header fields any configuration may allow; [`Limits::max_headers`] is capped here
/// because the parser keeps its scratch space on the stack.
pub const HEADER_CAP: usize = 256;

/// Whether this server knows the method. A syntactically valid method it does not know gets
/// 501 Not Implemented, as RFC 9110 §9.1 asks. A `match` on the bytes, not a search of a list:
/// it compiles to a length switch and one comparison, and it runs on every request.
#[inline(always)]
fn known_method(method: &[u8]) -> bool {
    matches!(method, b"GET" | b"HEAD" | b"POST" | b"PUT" | b"DELETE" | b"OPTIONS" | b"TRACE" | b"CONNECT" | b"PATCH")
}

/// Size limits: each one protects memory or time from a client that sends too much.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Longest request target in bytes; longer is 414 URI Too Long.
    pub max_target: usize,
    /// Longest request head (request line and fields) in bytes; longer is 431.
    pub max_head: usize,
    /// Most header fields; more is 431.
    pub max_headers: usize,
    /// Largest body in bytes; larger is 413 Content Too Large.
    pub max_body: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_target: 8 * 1024, max_head: 16 * 1024, max_headers: 100, max_body: 8 << 20 }
    }
}

/// A request the server must refuse: the status to answer and a reason a person can read.
///
/// Every parser error closes the connection afterwards, because once the framing is in doubt the
/// next byte may not be the start of the next request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpError {
    /// The status code to answer with.
    pub status: u16,
    /// What was wrong, sent as the response body.
    pub reason: &'static str,
}

impl HttpError {
    pub(crate) const fn new(status: u16, reason: &'static str) -> Self {
        HttpError { status, reason }
    }
}

/// A range of bytes inside the buffer the head was parsed from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    /// First byte, relative to the start of the request.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

impl Span {
    /// The span `part` covers inside `base`; `part` must be a slice of `base`.
    pub(crate) fn of(base: &[u8], part: &[u8]) -> Span {
        // Pointer arithmetic without dereferencing: both slices come from the same buffer.
        let start = (part.as_ptr() as usize - base.as_ptr() as usize) as u32;
        Span { start, end: start + part.len() as u32 }
    }

    /// The bytes this span covers in `buf`.
    pub fn get<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.start as usize..self.end as usize]
    }
}

/// How the body of a request is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Framing {
    /// No body.
    #[default]
    None,
    /// Exactly this many bytes follow the head.
    Length(u64),
    /// Chunked transfer coding; see [`crate::chunked`].
    Chunked,
}

/// A parsed request head, as spans into the buffer it came from.
#[derive(Clone, Debug, Default)]
pub struct Head {
    /// The method token.
    pub method: Span,
    /// The request target, as sent (for the access log).
    pub target: Span,
    /// The target in origin form: path and query, still percent-encoded. The target itself, or
    /// the part of an absolute-form target (`http://host/a?b`) after its authority, which is empty
    /// or starts with `?` when that target has no path (the path is then `/`).
    pub origin: Span,
    /// The authority the request is for: an absolute-form target's, which takes precedence (RFC
    /// 9112 §3.2.2), else the `Host` field's value; empty when neither was sent (HTTP/1.0).
    pub host: Span,
    /// The path with its percent-encoded unreserved characters decoded (`/%68%65llo` is `/hello`,
    /// RFC 3986 §6.2.2.2), when it has any; empty when the path as sent is already in that form,
    /// which is nearly always. Kept here, not in the buffer, so the log shows what was sent; reused
    /// between requests, so decoding allocates only the first time a connection needs it.
    pub path: String,
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// Every header field as (name, value) spans, in order. Reused between requests.
    pub headers: Vec<(Span, Span)>,
    /// How the body is delimited.
    pub framing: Framing,
    /// Whether the client wants the connection kept open after this request.
    pub keep_alive: bool,
    /// Whether the client sent `Expect: 100-continue` and waits for our go-ahead.
    pub expect_continue: bool,
    /// Length of the head in bytes, including the blank line that ends it.
    pub len: usize,
}

/// Parses the request head at the start of `buf`.
///
/// Returns `Ok(None)` when more bytes are needed, `Ok(Some(n))` when the head is complete and
/// `n` bytes long (then `head` describes it), or the error to answer with.
pub fn parse_head(buf: &[u8], limits: &Limits, head: &mut Head) -> Result<Option<usize>, HttpError> {
    // Every decision here must be the one a client sending the same bytes one at a time would get,
    // or the answer would depend on how the network split the request (tests/split.rs checks it).
    // So the tokenizer only ever sees the first `max_head + 1` bytes: a head that has not ended
    // within them is 431 whatever follows, and a longer read cannot turn that into a 400.
    let buf = &buf[..buf.len().min(limits.max_head.saturating_add(1))];
    let cap = limits.max_headers.min(HEADER_CAP);
    let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; HEADER_CAP];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, &mut storage[..cap]) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return partial(buf, limits).map(|()| None),
        Err(e) => return tokenizer_error(e, buf, limits).map(|()| None),
    };
    let target = req.path.unwrap_or("");
    // Checked before the head's length: a slower client would have been refused for its target
    // as soon as the target passed the limit, before the head's end was in sight.
    if target.len() > limits.max_target {
        return Err(HttpError::new(414, "request target longer than the limit"));
    }
    if len > limits.max_head {
        return Err(HttpError::new(431, "request head larger than the limit"));
    }
    let method = req.method.unwrap_or("");
    let minor = req.version.unwrap_or(1);
    let target = target.as_bytes();
    let (bad, percent) = scan_target(target);
    if bad {
        return Err(HttpError::new(400, "request target with a fragment (#) or a byte that is not ASCII"));
    }
    let (origin, authority) = match target {
        [b'/', ..] => (target, None),
        _ => other_target(method.as_bytes(), target)?,
    };
    head.method = Span::of(buf, method.as_bytes());
    head.target = Span::of(buf, target);
    head.origin = Span::of(buf, origin);
    head.path.clear();
    if percent {
        decode_unreserved(origin, &mut head.path);
    }
    head.minor = minor;
    head.len = len;
    head.headers.clear();

    // One pass over the fields decides framing, persistence and expectations. Names are compared
    // by length first: most fields are none of these, and that check is one comparison.
    let mut hosts = 0;
    let mut host: Option<&[u8]> = None;
    let mut length: Option<u64> = None;
    // Whether the last transfer coding so far is chunked (`None`: no Transfer-Encoding), how many
    // are chunked, and whether any is one we do not implement.
    let mut last_chunked: Option<bool> = None;
    let mut chunked_count = 0;
    let mut unknown_coding = false;
    let mut close = false;
    let mut keep_alive = false;
    let mut expect_continue = false;
    // Every line but the last two ends right before a field name, so checking there as the spans
    // are taken finds any bare LF (see `ends_in_crlf`).
    let mut crlf = ends_in_crlf(&buf[..len]);
    head.headers.extend(req.headers.iter().map(|h| {
        let name = Span::of(buf, h.name.as_bytes());
        crlf &= cr_before(buf, name.start as usize);
        (name, Span::of(buf, h.value))
    }));
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        match name.len() {
            4 if eq_lower(name, b"host") => {
                // No trim: the tokenizer leaves no whitespace around a value (tests/host_grammar).
                hosts += 1;
                host = Some(h.value);
            }
            6 if eq_lower(name, b"expect") => {
                if !trim(h.value).eq_ignore_ascii_case(b"100-continue") {
                    return Err(HttpError::new(417, "only the 100-continue expectation is supported"));
                }
                expect_continue = true;
            }
            // Each list-valued field first tries its one common value whole, which saves
            // splitting and trimming on nearly every request; anything else takes the general path.
            10 if eq_lower(name, b"connection") => {
                if eq_lower(h.value, b"keep-alive") {
                    keep_alive = true;
                    continue;
                }
                for token in h.value.split(|&c| c == b',').map(trim) {
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            14 if eq_lower(name, b"content-length") => {
                if let (Ok(n), None) = (parse_length(h.value), length) {
                    length = Some(n);
                    continue;
                }
                for item in h.value.split(|&c| c == b',').map(trim) {
                    let n = parse_length(item)?;
                    if length.is_some_and(|l| l != n) {
                        return Err(HttpError::new(400, "conflicting Content-Length values"));
                    }
                    length = Some(n);
                }
            }
            // Several fields are one list (RFC 9110 §5.3), so the verdict waits for all of them.
            17 if eq_lower(name, b"transfer-encoding") => {
                if last_chunked.is_none() && eq_lower(h.value, b"chunked") {
                    (last_chunked, chunked_count) = (Some(true), 1);
                    continue;
                }
                for coding in h.value.split(|&c| c == b',').map(trim) {
                    if coding.is_empty() {
                        return Err(HttpError::new(400, "empty transfer coding"));
                    }
                    let is_chunked = coding.eq_ignore_ascii_case(b"chunked");
                    chunked_count += usize::from(is_chunked);
                    unknown_coding |= !is_chunked;
                    last_chunked = Some(is_chunked);
                }
            }
            _ => {}
        }
    }

    if !crlf {
        return Err(HttpError::new(400, "a line of the head ends in a bare LF, not CRLF"));
    }
    if hosts > 1 {
        return Err(HttpError::new(400, "more than one Host header"));
    }
    if hosts == 0 && minor == 1 {
        return Err(HttpError::new(400, "missing Host header"));
    }
    // Checked even when an absolute-form target's authority overrides it: RFC 9112 §3.2 asks for a
    // 400 on any invalid Host, whatever else the request says.
    head.host = match (authority, host) {
        (_, Some(h)) if !host_port(h) => {
            return Err(HttpError::new(
                400,
                "invalid Host (a host name, IPv4 or [IPv6] address, and an optional :port)",
            ))
        }
        (Some(a), _) | (None, Some(a)) => Span::of(buf, a),
        (None, None) => Span::default(),
    };
    if !known_method(method.as_bytes()) {
        return Err(HttpError::new(501, "method not implemented"));
    }
    let chunked = match last_chunked {
        None => false,
        // A 1.0 message with a transfer coding passed through (or came from) something that
        // predates chunked and may have framed the body by its length or the close instead, so
        // RFC 9112 §6.1 has us treat the framing as faulty.
        Some(_) if minor == 0 => return Err(HttpError::new(400, "Transfer-Encoding in an HTTP/1.0 request")),
        // Without chunked last, the body's end is unknowable (RFC 9112 §6.3, rule 4).
        Some(false) => return Err(HttpError::new(400, "the last transfer coding must be chunked")),
        Some(true) if chunked_count > 1 => return Err(HttpError::new(400, "chunked applied more than once")),
        Some(true) if unknown_coding => {
            return Err(HttpError::new(501, "unsupported transfer coding (only chunked is implemented)"))
        }
        Some(true) => true,
    };
    head.framing = match (chunked, length) {
        // Both at once is how request smuggling starts; RFC 9112 §6.1 lets us refuse it.
        (true, Some(_)) => return Err(HttpError::new(400, "both Transfer-Encoding and Content-Length")),
        (true, None) => Framing::Chunked,
        (false, Some(0) | None) => Framing::None,
        (false, Some(n)) => Framing::Length(n),
    };
    if let Framing::Length(n) = head.framing {
        if n > limits.max_body {
            return Err(HttpError::new(413, "request body larger than the limit"));
        }
    }
    // HTTP/1.1 stays open unless told otherwise; 1.0 closes unless asked to stay (RFC 9112 §9.3).
    head.keep_alive = if minor == 1 { !close } else { keep_alive && !close };
    // A 1.0 client may take a `100 Continue` for the final answer, so its expectation is ignored
    // (RFC 9110 §10.1.1); it sends the body unasked.
    head.expect_continue = expect_continue && head.framing != Framing::None && minor == 1;
    Ok(Some(len))
}

/// Whether `bytes` (a field name or value the tokenizer accepted) is `lower`, ignoring ASCII case.
/// `lower` must be lowercase letters, digits and `-`.
///
/// Cheaper than `eq_ignore_ascii_case`, which maps every byte to lowercase: this only sets each
/// byte's case bit (`| 0x20`), eight bytes at a time. That is exact for what the tokenizer lets
/// through, which has no control characters: the only other byte that `| 0x20` turns into a
/// lowercase letter is its uppercase, and the bytes it turns into `-` or a digit are CR and
/// control characters.
#[inline(always)]
fn eq_lower(bytes: &[u8], lower: &[u8]) -> bool {
    const CASE: u64 = u64::from_ne_bytes([0x20; 8]);
    if bytes.len() != lower.len() {
        return false;
    }
    let (mut b, mut l) = (bytes.chunks_exact(8), lower.chunks_exact(8));
    let word = |c: &[u8]| u64::from_ne_bytes(c.try_into().unwrap_or_default());
    (&mut b).zip(&mut l).all(|(b, l)| word(b) | CASE == word(l))
        && b.remainder().iter().zip(l.remainder()).all(|(&c, &l)| c | 0x20 == l)
}

/// Decides whether an incomplete head is already over a limit, so that a client cannot make us
/// buffer without end by never finishing its request line or its fields.
fn partial(buf: &[u8], limits: &Limits) -> Result<(), HttpError> {
    if buf.len() > limits.max_target {
        // Is the request line still unfinished because of its target? Then the target is too long.
        let line_end = buf.iter().position(|&c| c == b'\n').unwrap_or(buf.len());
        let line = &buf[..line_end];
        if let Some(sp) = line.iter().position(|&c| c == b' ') {
            let rest = &line[sp + 1..];
            let target_len = rest.iter().position(|&c| c == b' ').unwrap_or(rest.len());
            if target_len > limits.max_target {
                return Err(HttpError::new(414, "request target longer than the limit"));
            }
        }
    }
    if buf.len() > limits.max_head {
        return Err(HttpError::new(431, "request head larger than the limit"));
    }
    Ok(())
}

/// Maps a tokenizer error to a status (only the version gets its own, 505), or `Ok(())` when the
/// error cannot be judged yet and more bytes are needed.
fn tokenizer_error(e: httparse::Error, buf: &[u8], limits: &Limits) -> Result<(), HttpError> {
    if target_overflowed_first(buf, limits) {
        return Err(HttpError::new(414, "request target longer than the limit"));
    }
    Err(match e {
        httparse::Error::TooManyHeaders => HttpError::new(431, "too many header fields"),
        // The tokenizer refuses `HTTP/2` before the minor digit has arrived; whether that is a
        // 505 or a 400 depends on the rest of the line, so wait for it (bounded by `partial`).
        // Also where whitespace inside the target lands: the tokenizer ends the target at the first
        // space and reads what follows as the version.
        httparse::Error::Version => match request_line(buf) {
            None => return partial(buf, limits),
            Some(line) if line.iter().filter(|&&c| c == b' ').count() > 2 => {
                HttpError::new(400, "whitespace inside the request target, or extra spaces in the request line")
            }
            Some(line) if looks_like_other_version(line) => {
                HttpError::new(505, "only HTTP/1.0 and HTTP/1.1 are supported")
            }
            Some(_) => HttpError::new(400, "malformed HTTP version"),
        },
        httparse::Error::HeaderName => {
            HttpError::new(400, "invalid header field name (or whitespace before the colon, or obs-fold)")
        }
        httparse::Error::HeaderValue => HttpError::new(400, "invalid character in a header field value"),
        httparse::Error::NewLine => HttpError::new(400, "malformed line ending (bare CR?)"),
        httparse::Error::Token => HttpError::new(400, "invalid method or request target"),
        httparse::Error::Status => HttpError::new(400, "malformed request line"),
    })
}

/// True when a client sending `buf` byte by byte would have been refused with 414 (by
/// [`partial`]) before the tokenizer reached the error it finds in the whole of `buf`: the
/// target passed its limit while everything before was still valid.
fn target_overflowed_first(buf: &[u8], limits: &Limits) -> bool {
    let Some(sp) = buf.iter().position(|&c| c == b' ' || c == b'\n') else { return false };
    // The first prefix at which `partial` sees a target longer than the limit.
    let at = sp + 1 + limits.max_target + 1;
    if buf[sp] != b' ' || at > buf.len() || buf[sp + 1..at].iter().any(|&c| c == b' ' || c == b'\n') {
        return false;
    }
    matches!(httparse::Request::new(&mut []).parse(&buf[..at]), Ok(httparse::Status::Partial))
}

/// The request line, without its line ending, once it is complete (the empty lines the tokenizer
/// skips before it are skipped here too).
fn request_line(buf: &[u8]) -> Option<&[u8]> {
    let start = buf.iter().position(|&c| c != b'\r' && c != b'\n')?;
    let rest = &buf[start..];
    let line = &rest[..rest.iter().position(|&c| c == b'\n')?];
    Some(line.strip_suffix(b"\r").unwrap_or(line))
}

/// True when the request line ends in a well-formed `HTTP/x.y` that is simply not 1.0 or 1.1.
fn looks_like_other_version(line: &[u8]) -> bool {
    let Some(v) = line.rsplit(|&c| c == b' ').next() else { return false };
    v.len() == 8 && v.starts_with(b"HTTP/") && v[5].is_ascii_digit() && v[6] == b'.' && v[7].is_ascii_digit()
}

/// Splits a request target that is not a path into its origin form (path and query) and, for an
/// absolute-form target, its authority, or refuses it (RFC 9112 §3.2). Which forms are allowed
/// depends on the method: `*` is for OPTIONS only, and CONNECT's authority form is left to the
/// application to refuse, as a proxy's business. Out of line: nearly every target is a path.
#[cold]
#[inline(never)]
fn other_target<'a>(method: &[u8], target: &'a [u8]) -> Result<(&'a [u8], Option<&'a [u8]>), HttpError> {
    match target {
        b"*" if method == b"OPTIONS" => return Ok((target, None)),
        b"*" => return Err(HttpError::new(400, "the * target is for OPTIONS only")),
        _ if method == b"CONNECT" => return Ok((target, None)),
        _ => {}
    }
    const FORM: HttpError = HttpError::new(400, "request target must be a path (/...) or an http(s) URI");
    let colon = target.iter().position(|&c| c == b':').ok_or(FORM)?;
    let (scheme, rest) = (&target[..colon], &target[colon + 1..]);
    if !scheme.eq_ignore_ascii_case(b"http") && !scheme.eq_ignore_ascii_case(b"https") {
        return Err(FORM);
    }
    let rest = rest.strip_prefix(b"//").ok_or(FORM)?;
    let end = rest.iter().position(|&c| c == b'/' || c == b'?').unwrap_or(rest.len());
    let (authority, origin) = rest.split_at(end);
    if authority.contains(&b'@') {
        // RFC 9110 §4.2.4: credentials in a URI are an error.
        return Err(HttpError::new(400, "user information in the target's authority"));
    }
    if !host_port(authority) || matches!(authority, [] | [b':', ..]) {
        return Err(HttpError::new(400, "invalid authority in the target (an http URI needs a host)"));
    }
    Ok((origin, Some(authority)))
}

/// Scans a target for what the tokenizer lets through and no target may hold, a byte from 0x80
/// up or a `#` (RFC 3986 allows neither, a fragment is never sent, and a target that is not UTF-8
/// could not be handed on as text), and for a `%`, which means the path may need decoding:
/// returns (bad, has a `%`).
///
/// Eight bytes at a time, since it runs over every target (the last word overlapping the one
/// before it, rather than a loop over the last few bytes): a word has a byte `b` where
/// `word ^ bbbbbbbb` has a zero byte, and a zero byte is one whose high bit survives
/// `(x - 0x01..) & !x`; that test is exact here, as words with a high bit set are caught first.
#[inline(always)]
fn scan_target(bytes: &[u8]) -> (bool, bool) {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    const HASH: u64 = u64::from_ne_bytes([b'#'; 8]);
    const PERCENT: u64 = u64::from_ne_bytes([b'%'; 8]);
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x;
    let scan = |(bad, percent): (u64, u64), word: &[u8]| {
        let w = u64::from_ne_bytes(word.try_into().unwrap_or_default());
        (bad | w | zero_bytes(w ^ HASH), percent | zero_bytes(w ^ PERCENT))
    };
    if bytes.len() < 8 {
        let bad = bytes.iter().any(|&c| c >= 0x80 || c == b'#');
        return (bad, bytes.contains(&b'%'));
    }
    let words = bytes.chunks_exact(8).fold((0, 0), scan);
    let (bad, percent) = scan(words, &bytes[bytes.len() - 8..]);
    (bad & HIGH != 0, percent & HIGH != 0)
}

/// Whether `v` is `uri-host [ ":" port ]` (RFC 3986 §3.2.2, §3.2.3), the grammar of `Host` and of
/// an authority without user information. The host may be empty (RFC 9112 §3.2 has a client send
/// an empty `Host` when the target has no authority).
///
/// It runs on every request, and the usual `Host` is a name of plain reg-name characters; that
/// case is one table lookup per byte with no branch, inline, and the rest goes the long way.
#[inline(always)]
fn host_port(v: &[u8]) -> bool {
    v.iter().fold(true, |ok, &c| ok & REG_NAME[c as usize]) || host_port_in_full(v)
}

/// [`host_port`] for a value with a port, an IP literal or a percent-encoded byte (or an invalid
/// one).
#[inline(never)]
fn host_port_in_full(v: &[u8]) -> bool {
    let port = match v {
        [b'[', rest @ ..] => match rest.iter().position(|&c| c == b']') {
            Some(end) if ip_literal(&rest[..end]) => &rest[end + 1..],
            _ => return false,
        },
        // reg-name = *( unreserved / pct-encoded / sub-delims ), which covers IPv4 addresses too,
        // then the port.
        _ => {
            let mut i = 0;
            loop {
                i += v[i..].iter().position(|&c| !REG_NAME[c as usize]).unwrap_or(v.len() - i);
                match v.get(i..i + 3) {
                    Some([b'%', h1, h2]) if h1.is_ascii_hexdigit() && h2.is_ascii_hexdigit() => i += 3,
                    _ => break &v[i..],
                }
            }
        }
    };
    match port {
        [] => true,
        [b':', digits @ ..] => digits.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// What may stand between `[` and `]`: an IPv6 address, or `v` 1*HEXDIG `.` and a future
/// format's characters (RFC 3986 §3.2.2).
fn ip_literal(v: &[u8]) -> bool {
    match v {
        [b'v' | b'V', rest @ ..] => {
            let dot = rest.iter().position(|&c| c == b'.').unwrap_or(0);
            dot > 0
                && rest[..dot].iter().all(u8::is_ascii_hexdigit)
                && rest.len() > dot + 1
                && rest[dot + 1..].iter().all(|&c| c == b':' || REG_NAME[c as usize])
        }
        _ => std::str::from_utf8(v).is_ok_and(|s| s.parse::<std::net::Ipv6Addr>().is_ok()),
    }
}

/// Whether each byte may appear in a reg-name other than as part of a `%` escape (RFC 3986
/// §3.2.2: unreserved or sub-delims), as a table, so that the check is one lookup per byte.
static REG_NAME: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 128 {
        let b = c as u8;
        table[c] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'_' | b'~' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
            );
        c += 1;
    }
    table
};

/// `Content-Length` is digits only: no sign, no spaces inside, no hex (RFC 9110 §8.6).
fn parse_length(item: &[u8]) -> Result<u64, HttpError> {
    digits(item).ok_or(HttpError::new(400, "invalid Content-Length"))
}

/// A `Content-Length` value: 1 to 19 decimal digits and nothing else (so it fits a `u64`). The
/// response reader shares it, so that both directions agree on what a length is.
pub(crate) fn digits(item: &[u8]) -> Option<u64> {
    if item.is_empty() || item.len() > 19 || !item.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(item.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// Whether `c` may appear in a token (RFC 9110 §5.6.2): visible ASCII but ``"(),/:;<=>?@[\]{}``.
/// Public for the other readers of field names (02's CGI header block).
pub const fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
        )
}

/// Whether the last two lines of a complete field section (its empty last line and the one before,
/// if any) end in CRLF, not in a bare LF; `section` runs up to and including the empty line.
///
/// RFC 9112 §2.2 lets a recipient take a bare LF for a line end, and `httparse` does; we do not,
/// because a peer in front of us that does not would see one field where we see two (a
/// `Transfer-Encoding` hidden in the value of another field is how such a disagreement becomes
/// request smuggling). Every other line ends right before a field name, so [`cr_before`] each name
/// completes the check with one comparison per field, without a scan of the bytes.
/// A section with no fields is just its empty line, which the callers handle before this.
#[inline(always)]
pub(crate) fn ends_in_crlf(section: &[u8]) -> bool {
    let n = section.len();
    cr_before(section, n) && cr_before(section, n.wrapping_sub(2))
}

/// Whether the line that ends right before `section[at]` ends in CRLF: false if there is no such
/// line (`at` < 2).
#[inline(always)]
pub(crate) fn cr_before(section: &[u8], at: usize) -> bool {
    section.get(at.wrapping_sub(2)) == Some(&b'\r')
}

/// Appends to `out` the path of `origin` (path and query) with each `%XX` that encodes an
/// unreserved character (`A-Z a-z 0-9 - . _ ~`) decoded, which RFC 3986 §6.2.2.2 makes the same
/// path; or leaves `out` empty when there is none. Other escapes stay as they are: decoding `%2F`
/// would turn one segment into two, and `%25` into an escape that was not there. `origin` is ASCII
/// (the parser checked). Out of line: a path with an escape is rare.
#[cold]
#[inline(never)]
fn decode_unreserved(origin: &[u8], out: &mut String) {
    let path = origin.split(|&c| c == b'?').next().unwrap_or_default();
    let mut copied = 0;
    for at in 0..path.len() {
        let Some([b'%', hi, lo]) = path.get(at..at + 3) else { continue };
        let (Some(hi), Some(lo)) = ((*hi as char).to_digit(16), (*lo as char).to_digit(16)) else { continue };
        let c = (hi * 16 + lo) as u8;
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
            out.extend(path[copied..at].iter().map(|&b| char::from(b)));
            out.push(char::from(c));
            copied = at + 3;
        }
    }
    if copied > 0 {
        out.extend(path[copied..].iter().map(|&b| char::from(b)));
    }
}

/// Trims optional whitespace (space and tab) from both ends.
pub fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Option<Head>, HttpError> {
        let mut head = Head::default();
        parse_head(raw.as_bytes(), &Limits::default(), &mut head).map(|n| n.map(|_| head))
    }

    fn status(raw: &str) -> u16 {
        parse(raw).err().map_or(0, |e| e.status)
    }

    #[test]
    fn minimal_get() {
        let raw = "GET /hello?x=1 HTTP/1.1\r\nHost: a\r\n\r\n";
        let head = parse(raw).unwrap().unwrap();
        assert_eq!(head.method.get(raw.as_bytes()), b"GET");
        assert_eq!(head.target.get(raw.as_bytes()), b"/hello?x=1");
        assert_eq!(head.len, raw.len());
        assert!(head.keep_alive);
        assert_eq!(head.framing, Framing::None);
    }

    #[test]
    fn partial_needs_more() {
        assert!(parse("GET / HTTP/1.1\r\nHost: a\r\n").unwrap().is_none());
    }

    #[test]
    fn framing_rules() {
        let h = parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n").unwrap().unwrap();
        assert_eq!(h.framing, Framing::Length(5));
        assert_eq!(status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), 400);
        assert_eq!(status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n"), 400);
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400
        );
        assert_eq!(status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501);
        assert_eq!(status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), 400);
        assert_eq!(status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"), 400);
        let h = parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n").unwrap().unwrap();
        assert_eq!(h.framing, Framing::Chunked);
    }

    /// RFC 9112 §6.3 rule 4: unless chunked is the last coding, the body's end is unknowable: 400.
    /// With chunked last, a coding before it is one we do not implement: 501. The fields of
    /// several `Transfer-Encoding` lines form one list.
    #[test]
    fn transfer_codings() {
        let te = |fields: &str| status(&format!("POST / HTTP/1.1\r\nHost: a\r\n{fields}\r\n"));
        for (fields, want) in [
            ("Transfer-Encoding: chunked\r\n", 0),
            ("Transfer-Encoding: gzip, CHUNKED\r\n", 501),
            ("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", 501),
            ("Transfer-Encoding: gzip\r\n", 400),
            ("Transfer-Encoding: chunked, gzip\r\n", 400),
            ("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n", 400),
            ("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", 400),
            ("Transfer-Encoding: gzip, chunked, chunked\r\n", 400),
            ("Transfer-Encoding: identity\r\n", 400),
            ("Transfer-Encoding: chunked;x=1\r\n", 400),
            ("Transfer-Encoding: ,chunked\r\n", 400),
            ("Transfer-Encoding: \r\n", 400),
        ] {
            assert_eq!(te(fields), want, "{fields:?}");
        }
        // HTTP/1.0 has no transfer codings: the framing is faulty (RFC 9112 §6.1).
        assert_eq!(status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
        assert_eq!(status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n"), 400);
    }

    #[test]
    fn host_grammar() {
        let host = |value: &str| status(&format!("GET / HTTP/1.1\r\nHost: {value}\r\n\r\n"));
        for good in [
            "example.com",
            "example.com:8080",
            "EXAMPLE.com.",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:8080",
            "[2001:db8::7]",
            "[::ffff:192.0.2.1]:1",
            "[v1.x:y]",
            "a-b_c~d!$&'()*+,;=",
            "%41%62",
            "h:",
            "",
            "  padded  ",
        ] {
            assert_eq!(host(good), 0, "{good:?}");
        }
        for bad in [
            "a b",
            "a\tb",
            "user@example.com",
            "user:pw@example.com",
            "example.com:80:80",
            "example.com:http",
            "example.com:-1",
            "[::1",
            "[::1]x",
            "[::g]",
            "[fe80::1%25eth0]",
            "[v.x]",
            "[v1.]",
            "a/b",
            "a?b",
            "a#b",
            "%4",
            "%zz",
            "\u{e9}",
            "a\"b",
        ] {
            assert_eq!(host(bad), 400, "{bad:?}");
        }
        // HTTP/1.0 may leave Host out, but one it sends is checked.
        assert_eq!(status("GET / HTTP/1.0\r\nHost: a b\r\n\r\n"), 400);
    }

    /// RFC 9112 §3.2.2: an absolute-form target is served by its path, and its authority takes
    /// the place of `Host`, which must still be there (and valid) in HTTP/1.1.
    #[test]
    fn absolute_form() {
        let spans = |raw: &str| {
            let head = parse(raw).unwrap().unwrap();
            let get = |s: Span| String::from_utf8(s.get(raw.as_bytes()).to_vec()).unwrap();
            (get(head.target), get(head.origin), get(head.host))
        };
        let raw = "GET http://example.com:8080/a/b?c=d HTTP/1.1\r\nHost: other\r\n\r\n";
        assert_eq!(
            spans(raw),
            ("http://example.com:8080/a/b?c=d".into(), "/a/b?c=d".into(), "example.com:8080".into())
        );
        let raw = "GET HTTPS://[::1]?q HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(spans(raw), ("HTTPS://[::1]?q".into(), "?q".into(), "[::1]".into()));
        let raw = "GET http://h HTTP/1.0\r\n\r\n";
        assert_eq!(spans(raw), ("http://h".into(), "".into(), "h".into()));
        let raw = "GET /p HTTP/1.1\r\nHost: h:1\r\n\r\n";
        assert_eq!(spans(raw), ("/p".into(), "/p".into(), "h:1".into()));
        assert_eq!(spans("GET /p HTTP/1.0\r\n\r\n").2, "");

        let target = |t: &str| status(&format!("GET {t} HTTP/1.1\r\nHost: h\r\n\r\n"));
        for bad in [
            "http://user@h/",
            "http://u:p@h/",
            "http:///p",
            "http://:80/p",
            "http://h h/",
            "http://h:x/",
            "http:/h/p",
            "http:h/p",
            "ftp://h/p",
            "h/p",
            "hello",
            "*",
        ] {
            assert_eq!(target(bad), 400, "{bad:?}");
        }
        assert_eq!(status("GET http://h/ HTTP/1.1\r\n\r\n"), 400, "Host is still required");
        assert_eq!(status("GET http://h/ HTTP/1.1\r\nHost: a b\r\n\r\n"), 400, "and still checked");
        assert_eq!(status("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"), 0);
        // An empty first segment is still a path (origin form), not a network-path reference.
        assert_eq!(target("//h/p"), 0);
    }

    #[test]
    fn target_bytes() {
        let target = |t: &[u8]| {
            let mut raw = b"GET ".to_vec();
            raw.extend_from_slice(t);
            raw.extend_from_slice(b" HTTP/1.1\r\nHost: h\r\n\r\n");
            parse_head(&raw, &Limits::default(), &mut Head::default()).err().map_or(0, |e| e.status)
        };
        for bad in [&b"/a b"[..], b"/a\tb", b"/a#b", b"/#", b"/\xc3\xa9", b"/\xff", b"/a\x01"] {
            assert_eq!(target(bad), 400, "{:?}", bad.escape_ascii());
        }
        for good in [&b"/a%20b"[..], b"/a?b=c&d", b"/{|}^`", b"/~user/a;b,c@d:e"] {
            assert_eq!(target(good), 0, "{:?}", good.escape_ascii());
        }
        // Whitespace inside the target used to read as a bad version, and get 505.
        assert_eq!(status("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
        assert_eq!(status("GET /a HTTP/1.1 HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
        assert_eq!(status("GET /  HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
        assert_eq!(status("GET  / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/3.0\r\nHost: h\r\n\r\n"), 505);
    }

    /// The word-at-a-time scan agrees with the obvious one, for a byte of interest at every
    /// position of targets of every length up to three words (so in whole words, the overlapping
    /// last word and targets shorter than a word).
    #[test]
    fn target_scan_agrees_with_a_byte_loop() {
        for len in 0..=24 {
            for at in 0..len {
                for special in [b'#', b'%', 0x80, 0xff, b'"', b'#' | 0x80, b'%' | 0x80, 0x7f, 0x00, 0x01, b'$', b'&'] {
                    let mut target = vec![b'a'; len];
                    target[at] = special;
                    let bad = target.iter().any(|&c| c >= 0x80 || c == b'#');
                    let (got_bad, got_percent) = scan_target(&target);
                    assert_eq!(got_bad, bad, "{special:#x} at {at} of {len}");
                    if !bad {
                        assert_eq!(got_percent, special == b'%', "{special:#x} at {at} of {len}");
                    }
                }
            }
            assert_eq!(scan_target(&vec![b'/'; len]), (false, false));
        }
    }

    /// A bare LF ends no line of the head, wherever it is (RFC 9112 §2.2 allows refusing it).
    #[test]
    fn bare_lf_is_refused() {
        for raw in [
            "GET / HTTP/1.1\nHost: a\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nX: 1\nY: 2\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\n\n",
            "GET / HTTP/1.1\nHost: a\n\n",
            "GET / HTTP/1.0\n\n",
            "GET / HTTP/1.0\n\r\n",
            "GET / HTTP/1.0\r\n\n",
        ] {
            assert_eq!(status(raw), 400, "{raw:?}");
        }
        assert_eq!(status("GET / HTTP/1.0\r\n\r\n"), 0);
        // An empty line before the request line is skipped (RFC 9112 §2.2), bare LF or not.
        assert_eq!(status("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    }

    /// RFC 9110 §10.1.1: a server must ignore `100-continue` from an HTTP/1.0 client.
    #[test]
    fn expect_continue_only_from_http11() {
        let expect = |version: &str| {
            let raw = format!("POST / {version}\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
            parse(&raw).unwrap().unwrap().expect_continue
        };
        assert!(expect("HTTP/1.1"));
        assert!(!expect("HTTP/1.0"));
    }

    #[test]
    fn semantics() {
        assert_eq!(status("GET / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.0\r\n\r\n"), 0);
        assert_eq!(status("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505);
        assert_eq!(status("BREW / HTTP/1.1\r\nHost: a\r\n\r\n"), 501);
        assert_eq!(status("GET / HTTP/1.1\r\nHost: a\r\nExpect: tea\r\n\r\n"), 417);
        assert_eq!(status("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n"), 400);
        // Whitespace before the first field line would hide it from a peer that reads it as a fold.
        assert_eq!(status("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\n\tX: 1\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\rHost: a\r\n\r\n"), 400);
        let h = parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").unwrap().unwrap();
        assert!(h.keep_alive);
        let h = parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap().unwrap();
        assert!(!h.keep_alive);
    }

    #[test]
    fn eq_lower_agrees_with_eq_ignore_ascii_case_on_what_the_tokenizer_accepts() {
        // Every byte httparse lets into a field value (HTAB, visible ASCII, space, obs-text); names
        // are a subset. Against each byte a target may hold, alone and inside longer words.
        let accepted: Vec<u8> = (0..=255u8).filter(|&c| c == b'\t' || c >= b' ' && c != 0x7f).collect();
        let targets = b"abcdefghijklmnopqrstuvwxyz0123456789-";
        for &c in &accepted {
            for &t in targets {
                let (one, want) = ([c], [t]);
                assert_eq!(eq_lower(&one, &want), one.eq_ignore_ascii_case(&want), "{c:#x} vs {t:#x}");
                // At each position of an 11-byte word: in the 8-byte word compared at once, and in
                // the bytes left over.
                for at in 0..11 {
                    let (mut long, mut want) = (*b"xyzwvutsqrp", *b"xyzwvutsqrp");
                    (long[at], want[at]) = (c, t);
                    assert_eq!(eq_lower(&long, &want), long.eq_ignore_ascii_case(&want), "{c:#x} vs {t:#x} at {at}");
                }
            }
        }
        assert!(eq_lower(b"Transfer-ENCODING", b"transfer-encoding"));
        assert!(!eq_lower(b"transfer-encodin", b"transfer-encoding"));
    }

    #[test]
    fn version_waits_for_the_whole_line() {
        // The tokenizer refuses `HTTP/2` at once; the answer (505 or 400) needs the rest of the line.
        assert!(parse("GET / HTTP/2").unwrap().is_none());
        assert_eq!(status("GET / HTTP/2.0\r\n"), 505);
        assert_eq!(status("GET / HTTP/2.00\r\n"), 400);
        assert_eq!(status("\r\nGET / HTTP/3.0\r\nHost: a\r\n\r\n"), 505);
    }

    #[test]
    fn limits() {
        let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(9000));
        assert_eq!(status(&long), 414);
        let unfinished = format!("GET /{}", "a".repeat(9000));
        assert_eq!(status(&unfinished), 414);
        let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
        assert_eq!(status(&format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n")), 431);
        let big = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n", "v".repeat(17000));
        assert_eq!(status(&big), 431);
        assert_eq!(status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9999999999\r\n\r\n"), 413);
    }
}
