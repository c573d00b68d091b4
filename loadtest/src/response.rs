//! Response framing: where one HTTP/1.1 response ends and the next begins.
//!
//! A load tester that counts bytes instead of responses lies as soon as a server pipelines, chunks or
//! closes early, so every response is framed properly: `httparse` tokenizes the head, and this module
//! decides the body's length from `Content-Length`, `Transfer-Encoding: chunked` or the end of the
//! connection, exactly as RFC 9112 section 6.3 orders them. It does no I/O and never copies body
//! bytes: the caller feeds whatever it has just read and learns how much of it belongs to the current
//! response. Only an incomplete head has to be kept by the caller, because a head is the only thing
//! that must be seen whole before it can be understood.

use std::mem::MaybeUninit;

/// The largest response head accepted; past this the response is malformed rather than buffered
/// without bound.
pub const MAX_HEAD: usize = 64 * 1024;

/// How many header lines a response head may have; `httparse` fails (and we report malformed) past it.
const MAX_HEADERS: usize = 32;

/// The server sent bytes that are not a valid HTTP/1.1 response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// One complete response, as seen by the framing layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    /// How many bytes of the fed slice the end of this response used.
    pub consumed: usize,
    /// The status code of the final (non-1xx) response.
    pub status: u16,
    /// Whether the server will close the connection after this response.
    pub close: bool,
}

/// What happened to one slice fed to the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// The response is not finished; `consumed` bytes were used (all of them while in a body, none
    /// while the head is incomplete, in which case the caller keeps them for the next read).
    More {
        /// How many bytes of the fed slice belong to the response so far.
        consumed: usize,
    },
    /// A response ended inside the slice.
    Done(Done),
}

/// How the body of the current response ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// This many body bytes are still to come.
    Length(u64),
    /// A chunked body, decoded byte by byte so that chunk boundaries may fall anywhere.
    Chunked(Chunk),
    /// The body runs until the server closes the connection.
    UntilClose,
}

/// The position inside a chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading the hex size of the next chunk; `digits` counts how many were seen.
    Size {
        /// The size read so far.
        value: u64,
        /// How many hex digits were read, so that an empty size line is rejected.
        digits: u8,
    },
    /// Skipping a chunk extension up to the end of the size line.
    Extension {
        /// The chunk size already read.
        value: u64,
    },
    /// Waiting for the LF that ends the size line.
    SizeLf {
        /// The chunk size already read.
        value: u64,
    },
    /// Inside chunk data; this many bytes remain.
    Data(u64),
    /// Waiting for the CR after chunk data.
    DataCr,
    /// Waiting for the LF after chunk data.
    DataLf,
    /// In the trailer section after the last chunk; `line_empty` says whether the current line has
    /// had any byte other than CR yet, since an empty line ends the body.
    Trailer {
        /// True until a byte other than CR or LF arrives on the current trailer line.
        line_empty: bool,
    },
}

/// Where the reader is within the current response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for (the rest of) a status line and headers.
    Head,
    /// In the body of a response whose head has been read.
    Body {
        /// The status code from the head.
        status: u16,
        /// Whether the head asked for the connection to close.
        close: bool,
        /// How the body ends.
        body: Body,
    },
}

/// Frames responses on one connection; reuse it for every response of that connection.
#[derive(Debug, Clone)]
pub struct ResponseReader {
    /// Where the reader is within the current response.
    state: State,
}

impl Default for ResponseReader {
    fn default() -> Self {
        Self::new()
    }
}

impl ResponseReader {
    /// A reader waiting for the first response head.
    pub fn new() -> Self {
        ResponseReader { state: State::Head }
    }

    /// Whether the reader is between responses or inside an incomplete head, i.e. whether unused
    /// bytes must be kept by the caller.
    pub fn in_head(&self) -> bool {
        self.state == State::Head
    }

    /// Forgets any partial response, for a fresh connection.
    pub fn reset(&mut self) {
        self.state = State::Head;
    }

    /// Feeds newly read bytes. `head_request` says whether the request being answered was `HEAD`,
    /// whose response has headers that describe a body it does not carry.
    pub fn feed(&mut self, buf: &[u8], head_request: bool) -> Result<Feed, Malformed> {
        let mut pos = 0;
        loop {
            match self.state {
                State::Head => match parse_head(&buf[pos..], head_request)? {
                    None => return Ok(Feed::More { consumed: pos }),
                    Some(HeadOutcome::Interim(n)) => pos += n,
                    Some(HeadOutcome::Final { len, status, close, body }) => {
                        pos += len;
                        match body {
                            None => return Ok(self.finish(pos, status, close)),
                            Some(body) => self.state = State::Body { status, close, body },
                        }
                    }
                },
                State::Body { status, close, body } => {
                    let rest = &buf[pos..];
                    match body {
                        Body::Length(remaining) => {
                            let take = remaining.min(rest.len() as u64);
                            pos += take as usize;
                            if take == remaining {
                                return Ok(self.finish(pos, status, close));
                            }
                            self.state = State::Body { status, close, body: Body::Length(remaining - take) };
                            return Ok(Feed::More { consumed: pos });
                        }
                        Body::UntilClose => return Ok(Feed::More { consumed: buf.len() }),
                        Body::Chunked(chunk) => {
                            let (used, next) = advance_chunked(chunk, rest)?;
                            pos += used;
                            match next {
                                None => return Ok(self.finish(pos, status, close)),
                                Some(chunk) => {
                                    self.state = State::Body { status, close, body: Body::Chunked(chunk) };
                                    return Ok(Feed::More { consumed: pos });
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The connection reached end of file: a body delimited by the close ends here, anything else
    /// in progress is lost. Returns the finished response, if the close completed one.
    pub fn at_eof(&mut self) -> Option<Done> {
        match self.state {
            State::Body { status, body: Body::UntilClose, .. } => {
                self.state = State::Head;
                Some(Done { consumed: 0, status, close: true })
            }
            _ => None,
        }
    }

    /// Ends the current response at `consumed` and gets ready for the next head.
    fn finish(&mut self, consumed: usize, status: u16, close: bool) -> Feed {
        self.state = State::Head;
        Feed::Done(Done { consumed, status, close })
    }
}

/// What a complete head said.
enum HeadOutcome {
    /// A 1xx interim response of this many bytes, to be skipped.
    Interim(usize),
    /// A final response head.
    Final {
        /// The head's length in bytes.
        len: usize,
        /// The status code.
        status: u16,
        /// Whether the connection closes after this response.
        close: bool,
        /// How the body ends, or `None` when there is no body.
        body: Option<Body>,
    },
}

/// Parses one head if it is complete; `Ok(None)` means more bytes are needed.
fn parse_head(buf: &[u8], head_request: bool) -> Result<Option<HeadOutcome>, Malformed> {
    // Uninitialized header slots cost nothing to create, where `[EMPTY_HEADER; 32]` would write a
    // kilobyte per response (measured: 5% of the generator's time at 700k responses/s).
    let mut headers = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let len =
        match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut response, buf, &mut headers) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(Malformed),
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(Malformed),
        };
    let status = response.code.ok_or(Malformed)?;
    // 101 switches protocols, so nothing after it is HTTP any more: treat it as final and closing.
    if (100..200).contains(&status) && status != 101 {
        return Ok(Some(HeadOutcome::Interim(len)));
    }
    // HTTP/1.0 closes unless it says keep-alive; HTTP/1.1 stays open unless it says close.
    let mut close = response.version == Some(0);
    let mut chunked = false;
    let mut length: Option<u64> = None;
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("connection") {
            for token in header.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    close = false;
                }
            }
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            // Only the last coding decides; "gzip, chunked" is chunked, "chunked, gzip" is not.
            let last = header.value.rsplit(|&b| b == b',').next().unwrap_or_default();
            chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
        } else if header.name.eq_ignore_ascii_case("content-length") {
            let value = parse_decimal(header.value).ok_or(Malformed)?;
            if length.is_some_and(|old| old != value) {
                return Err(Malformed);
            }
            length = Some(value);
        }
    }
    let body = if head_request || status == 101 || status == 204 || status == 304 {
        None
    } else if chunked {
        Some(Body::Chunked(Chunk::Size { value: 0, digits: 0 }))
    } else if let Some(length) = length {
        (length > 0).then_some(Body::Length(length))
    } else {
        close = true;
        Some(Body::UntilClose)
    };
    Ok(Some(HeadOutcome::Final { len, status, close, body }))
}

/// Parses an ASCII decimal number with no sign or spaces; `None` on anything else or on overflow.
fn parse_decimal(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 19 {
        return None;
    }
    bytes.iter().try_fold(0u64, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0')))
}

/// Moves through chunked framing; returns the bytes used and the new position, or `None` when the
/// body (with its trailers) is complete.
fn advance_chunked(mut chunk: Chunk, buf: &[u8]) -> Result<(usize, Option<Chunk>), Malformed> {
    let mut pos = 0;
    while pos < buf.len() {
        if let Chunk::Data(remaining) = chunk {
            // Chunk data is skipped in bulk; it is the only part that can be large.
            let take = remaining.min((buf.len() - pos) as u64);
            pos += take as usize;
            chunk = if take == remaining { Chunk::DataCr } else { Chunk::Data(remaining - take) };
            continue;
        }
        let byte = buf[pos];
        pos += 1;
        chunk = match chunk {
            Chunk::Size { value, digits } => match byte {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                    if digits >= 15 {
                        return Err(Malformed);
                    }
                    let digit = (byte as char).to_digit(16).ok_or(Malformed)?;
                    Chunk::Size { value: value * 16 + u64::from(digit), digits: digits + 1 }
                }
                _ if digits == 0 => return Err(Malformed),
                b';' | b' ' | b'\t' => Chunk::Extension { value },
                b'\r' => Chunk::SizeLf { value },
                b'\n' => after_size(value),
                _ => return Err(Malformed),
            },
            Chunk::Extension { value } => match byte {
                b'\n' => after_size(value),
                _ => Chunk::Extension { value },
            },
            Chunk::SizeLf { value } => match byte {
                b'\n' => after_size(value),
                _ => return Err(Malformed),
            },
            Chunk::DataCr => match byte {
                b'\r' => Chunk::DataLf,
                b'\n' => Chunk::Size { value: 0, digits: 0 },
                _ => return Err(Malformed),
            },
            Chunk::DataLf => match byte {
                b'\n' => Chunk::Size { value: 0, digits: 0 },
                _ => return Err(Malformed),
            },
            Chunk::Trailer { line_empty } => match byte {
                b'\n' if line_empty => return Ok((pos, None)),
                b'\n' => Chunk::Trailer { line_empty: true },
                b'\r' => Chunk::Trailer { line_empty },
                _ => Chunk::Trailer { line_empty: false },
            },
            Chunk::Data(_) => unreachable!("chunk data is handled before the byte switch"),
        };
    }
    Ok((pos, Some(chunk)))
}

/// The state after a chunk-size line: data, or the trailers after the last (zero) chunk.
fn after_size(value: u64) -> Chunk {
    if value == 0 {
        Chunk::Trailer { line_empty: true }
    } else {
        Chunk::Data(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` split at every possible point and returns the responses seen.
    fn frame_all(input: &[u8], split: usize) -> Result<Vec<(u16, bool)>, Malformed> {
        let mut reader = ResponseReader::new();
        let mut kept: Vec<u8> = Vec::new();
        let mut seen = Vec::new();
        for piece in [&input[..split], &input[split..]] {
            kept.extend_from_slice(piece);
            let mut pos = 0;
            while pos < kept.len() {
                match reader.feed(&kept[pos..], false)? {
                    Feed::Done(done) => {
                        pos += done.consumed;
                        seen.push((done.status, done.close));
                    }
                    Feed::More { consumed } => {
                        pos += consumed;
                        break;
                    }
                }
            }
            if reader.in_head() {
                kept.drain(..pos);
            } else {
                kept.clear();
            }
        }
        if let Some(done) = reader.at_eof() {
            seen.push((done.status, done.close));
        }
        Ok(seen)
    }

    #[test]
    fn frames_every_kind_of_body_at_every_split_point() {
        let input: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n\
            HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, world!\
            HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nX-T: 1\r\n\r\n\
            HTTP/1.1 204 No Content\r\n\r\n\
            HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok\
            HTTP/1.0 200 OK\r\n\r\nuntil the end";
        let expected = vec![(200, false), (404, false), (204, false), (200, true), (200, true)];
        for split in 0..=input.len() {
            assert_eq!(frame_all(input, split).unwrap(), expected, "split at {split}");
        }
    }

    #[test]
    fn rejects_garbage_and_conflicting_lengths() {
        assert_eq!(frame_all(b"garbage\r\n\r\n", 3), Err(Malformed));
        assert_eq!(frame_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 0), Err(Malformed));
        assert_eq!(frame_all(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0), Err(Malformed));
        assert_eq!(frame_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0), Err(Malformed));
    }

    #[test]
    fn head_responses_have_no_body() {
        let mut reader = ResponseReader::new();
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
        let fed = reader.feed(head, true).unwrap();
        assert_eq!(fed, Feed::Done(Done { consumed: head.len(), status: 200, close: false }));
    }

    #[test]
    fn an_endless_head_is_malformed_not_buffered() {
        let mut long = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        long.resize(MAX_HEAD + 10, b'a');
        assert_eq!(ResponseReader::new().feed(&long, false), Err(Malformed));
    }
}
