//! An incremental decoder for the chunked transfer coding (RFC 9112 §7.1), working in place.
//!
//! The decoded body is written over the encoded bytes in the same buffer: the write position never
//! passes the read position, because every chunk loses at least its size line. So the body ends up
//! contiguous right after the head, with no second buffer and no copy per request beyond the
//! `copy_within` that closes each gap. The decoder can stop at any byte and resume when more
//! arrive, which is what lets a request be split at any point by the network.

use crate::parse::HttpError;

/// The longest chunk-size line (size and extensions) we wait for before calling it an attack.
const MAX_SIZE_LINE: usize = 4096;
/// The largest trailer section we wait for.
const MAX_TRAILERS: usize = 4 * MAX_SIZE_LINE;
/// The most trailer fields we accept.
const MAX_TRAILER_FIELDS: usize = 32;

/// Where the decoder is inside the chunked body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data, with this many bytes still to come.
    Data(u64),
    /// After a chunk's data, expecting its CRLF.
    DataEnd,
    /// After the last (zero) chunk, expecting trailer fields and the final blank line.
    Trailers,
    /// The body is complete.
    Done,
}

/// The decoder's progress through one chunked body.
#[derive(Clone, Debug)]
pub struct ChunkedDecoder {
    /// Where in the body we are.
    state: State,
    /// Decoded bytes so far, checked against the body limit.
    total: u64,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder { state: State::Size, total: 0 }
    }
}

impl ChunkedDecoder {
    /// Decodes what it can of `buf[*read..]`, moving data to `buf[*write..]`.
    ///
    /// Returns `Ok(true)` once the whole body (with its trailers) is decoded; then `*read` is the
    /// first byte after the body and `buf[start..*write]` is the body, where `start` was `*write` at
    /// the first call. `Ok(false)` means "call again with more bytes".
    pub fn decode(
        &mut self,
        buf: &mut [u8],
        read: &mut usize,
        write: &mut usize,
        max_body: u64,
    ) -> Result<bool, HttpError> {
        loop {
            let avail = &buf[*read..];
            match self.state {
                State::Done => return Ok(true),
                // Each line is parsed from a window one byte longer than its limit, never from
                // everything buffered: then a line over the limit is refused however the bytes
                // arrived, and one under it accepted, instead of depending on whether the client's
                // next bytes came in the same read (tests/split.rs checks this).
                State::Size => match httparse::parse_chunk_size(window(avail, MAX_SIZE_LINE)) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        *read += used;
                        self.total = self.total.saturating_add(size);
                        if self.total > max_body {
                            return Err(HttpError::new(413, "request body larger than the limit"));
                        }
                        self.state = if size == 0 { State::Trailers } else { State::Data(size) };
                    }
                    Ok(httparse::Status::Partial) if avail.len() > MAX_SIZE_LINE => {
                        return Err(HttpError::new(400, "chunk size line too long"));
                    }
                    Ok(httparse::Status::Partial) => return Ok(false),
                    Err(_) => return Err(HttpError::new(400, "invalid chunk size")),
                },
                State::Data(left) => {
                    let n = (left.min(avail.len() as u64)) as usize;
                    if n == 0 {
                        return Ok(false);
                    }
                    buf.copy_within(*read..*read + n, *write);
                    *read += n;
                    *write += n;
                    self.state = if left == n as u64 { State::DataEnd } else { State::Data(left - n as u64) };
                }
                State::DataEnd => match avail {
                    [b'\r', b'\n', ..] => {
                        *read += 2;
                        self.state = State::Size;
                    }
                    [] | [b'\r'] => return Ok(false),
                    _ => return Err(HttpError::new(400, "chunk data not followed by CRLF")),
                },
                State::Trailers => match trailer_section(window(avail, MAX_TRAILERS)) {
                    Ok(httparse::Status::Complete(used)) => {
                        *read += used;
                        self.state = State::Done;
                    }
                    Ok(httparse::Status::Partial) if avail.len() > MAX_TRAILERS => {
                        return Err(HttpError::new(431, "trailer section too large"));
                    }
                    Ok(httparse::Status::Partial) => return Ok(false),
                    Err(_) => return Err(HttpError::new(400, "malformed trailer section")),
                },
            }
        }
    }
}

/// Steps over the trailer section at the start of `buf`, returning its length once complete.
///
/// Nothing here uses trailer fields, so they are not kept; but the tokenizer wants an initialized
/// slot per field, and clearing [`MAX_TRAILER_FIELDS`] slots for every chunked body would cost more
/// than parsing the usual trailer section, which is empty or holds a field or two. So the common
/// cases go first: no trailers at all, then a few slots, and the full array only for a request
/// with more fields than that (parsed again from the start, with the same outcome as if the full
/// array had been used at once).
fn trailer_section(buf: &[u8]) -> httparse::Result<usize> {
    let complete = |status: httparse::Status<(usize, &[httparse::Header<'_>])>| match status {
        httparse::Status::Complete((used, _)) => httparse::Status::Complete(used),
        httparse::Status::Partial => httparse::Status::Partial,
    };
    if buf.starts_with(b"\r\n") {
        return Ok(httparse::Status::Complete(2));
    }
    let mut few = [httparse::EMPTY_HEADER; 4];
    match httparse::parse_headers(buf, &mut few) {
        Err(httparse::Error::TooManyHeaders) => {
            let mut all = [httparse::EMPTY_HEADER; MAX_TRAILER_FIELDS];
            httparse::parse_headers(buf, &mut all).map(complete)
        }
        other => other.map(complete),
    }
}

/// The first `limit + 1` bytes of `avail`: enough to tell that what is parsed there is too long.
fn window(avail: &[u8], limit: usize) -> &[u8] {
    &avail[..avail.len().min(limit + 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_split(raw: &[u8], split: usize) -> Result<(Vec<u8>, usize), HttpError> {
        let mut buf = raw.to_vec();
        let (mut read, mut write) = (0, 0);
        let mut d = ChunkedDecoder::default();
        // First only part of the input is "received".
        let mut part = buf[..split].to_vec();
        if d.decode(&mut part, &mut read, &mut write, 1 << 20)? {
            return Ok((part[..write].to_vec(), read));
        }
        buf[..split].copy_from_slice(&part);
        assert!(d.decode(&mut buf, &mut read, &mut write, 1 << 20)?);
        Ok((buf[..write].to_vec(), read))
    }

    #[test]
    fn decodes_at_every_split() {
        let raw = b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: yes\r\n\r\nNEXT";
        for split in 0..raw.len() - 4 {
            let (body, used) = decode_split(raw, split).unwrap();
            assert_eq!(body, b"hello, world", "split at {split}");
            assert_eq!(&raw[used..], b"NEXT");
        }
    }

    #[test]
    fn trailer_fields_up_to_the_limit() {
        let body = |fields: usize| {
            let trailers: String = (0..fields).map(|i| format!("T{i}: v\r\n")).collect();
            format!("1\r\na\r\n0\r\n{trailers}\r\nNEXT").into_bytes()
        };
        for fields in [0, 1, 4, 5, MAX_TRAILER_FIELDS] {
            let raw = body(fields);
            let (decoded, used) = decode_split(&raw, raw.len()).unwrap();
            assert_eq!((&decoded[..], &raw[used..]), (&b"a"[..], &b"NEXT"[..]), "{fields} fields");
        }
        let raw = body(MAX_TRAILER_FIELDS + 1);
        assert_eq!(decode_split(&raw, raw.len()).unwrap_err().status, 400);
    }

    #[test]
    fn rejects_bad_input() {
        let mut d = ChunkedDecoder::default();
        let (mut r, mut w) = (0, 0);
        assert_eq!(d.decode(&mut b"zz\r\n".to_vec(), &mut r, &mut w, 100).unwrap_err().status, 400);
        let mut d = ChunkedDecoder::default();
        let (mut r, mut w) = (0, 0);
        assert_eq!(d.decode(&mut b"ff\r\n".to_vec(), &mut r, &mut w, 100).unwrap_err().status, 413);
        let mut d = ChunkedDecoder::default();
        let (mut r, mut w) = (0, 0);
        assert_eq!(d.decode(&mut b"1\r\nab".to_vec(), &mut r, &mut w, 100).unwrap_err().status, 400);
    }
}
