//! An incremental decoder for the chunked transfer coding (RFC 9112 §7.1), working in place.
//!
//! The decoded body is written over the encoded bytes in the same buffer: the write position never
//! passes the read position, because every chunk loses at least its size line. So the body ends up
//! contiguous right after the head, with no second buffer and no copy per request beyond the
//! `copy_within` that closes each gap. The decoder can stop at any byte and resume when more
//! arrive, which is what lets a request be split at any point by the network.
//!
//! The chunk-size line is parsed here, not by `httparse::parse_chunk_size`: that function takes an
//! empty or blank line for a size of 0 (the last chunk) and lets control bytes, a bare LF among
//! them, through inside an extension, so a body our decoder ended early, or framed around a bare
//! LF, would be read differently by a peer that follows RFC 9112 §7.1: request smuggling. So every
//! line of the body is held to the grammar exactly: `1*HEXDIG`, then only `chunk-ext`, then CRLF;
//! chunk data and trailer lines end in CRLF too.

use crate::parse::{crlf_lines, is_tchar, HttpError};

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
                State::Size => match size_line(window(avail, MAX_SIZE_LINE))? {
                    Some((used, size)) => {
                        *read += used;
                        self.total = self.total.saturating_add(size);
                        if self.total > max_body {
                            return Err(HttpError::new(413, "request body larger than the limit"));
                        }
                        self.state = if size == 0 { State::Trailers } else { State::Data(size) };
                    }
                    None if avail.len() > MAX_SIZE_LINE => {
                        return Err(HttpError::new(400, "chunk size line too long"));
                    }
                    None => return Ok(false),
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
                    Err(Malformed::Fields) => return Err(HttpError::new(400, "malformed trailer section")),
                    Err(Malformed::BareLf) => return Err(HttpError::new(400, "trailer line not ended by CRLF")),
                },
            }
        }
    }
}

/// Where in a chunk-size line the parser is: the states of RFC 9112 §7.1.1's grammar,
///
/// ```text
/// chunk-size CRLF, chunk-size  = 1*HEXDIG
/// chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
/// chunk-ext-name = token,  chunk-ext-val = token / quoted-string
/// ```
///
/// one per place where a different set of bytes may come next.
#[derive(Clone, Copy)]
enum Line {
    /// In the hex digits (at least one seen).
    Size,
    /// After the size or an extension, in whitespace that must lead to `;`.
    BeforeSemi,
    /// After `;`, before the extension's name.
    BeforeName,
    /// In the extension's name.
    Name,
    /// After the name, in whitespace that must lead to `=` or `;`.
    AfterName,
    /// After `=`, before the value.
    BeforeValue,
    /// In a token value.
    Token,
    /// Inside a quoted-string value.
    Quoted,
    /// After a backslash inside a quoted string.
    Escaped,
    /// After the closing quote.
    Closed,
    /// After the CR, expecting LF.
    Cr,
}

/// Parses the chunk-size line at the start of `buf`: `Some((length, size))` once it is complete,
/// `None` if more bytes are needed, or the error.
///
/// The bytes are judged left to right and the first one that breaks the grammar decides, so the
/// answer for any prefix of a line is "need more" or the same error as for the whole line: the
/// decoder may stop and restart the line anywhere without the verdict depending on where.
fn size_line(buf: &[u8]) -> Result<Option<(usize, u64)>, HttpError> {
    const NO_DIGITS: HttpError = HttpError::new(400, "chunk size must start with a hex digit");
    const OVERFLOW: HttpError = HttpError::new(400, "chunk size does not fit in 64 bits");
    const BAD_EXT: HttpError = HttpError::new(400, "invalid chunk extension (only token=value or a quoted string)");
    const BAD_EOL: HttpError = HttpError::new(400, "chunk size line not ended by CRLF");
    let Some(&first) = buf.first() else { return Ok(None) };
    let mut size = u64::from(hex(first).ok_or(NO_DIGITS)?);
    let mut state = Line::Size;
    for (i, &c) in buf.iter().enumerate().skip(1) {
        let ws = c == b' ' || c == b'\t';
        state = match (state, c) {
            (Line::Size, _) if hex(c).is_some() => {
                // Leading zeros are allowed; a 17th significant digit is not.
                if size >> 60 != 0 {
                    return Err(OVERFLOW);
                }
                size = size << 4 | u64::from(hex(c).unwrap_or(0));
                Line::Size
            }
            (Line::Cr, b'\n') => return Ok(Some((i + 1, size))),
            (Line::Cr, _) => return Err(BAD_EOL),
            (Line::Size | Line::Name | Line::Token | Line::Closed, b'\r') => Line::Cr,
            (Line::Size | Line::Token | Line::Closed, _) if ws => Line::BeforeSemi,
            (Line::Size | Line::BeforeSemi | Line::Name | Line::AfterName | Line::Token | Line::Closed, b';') => {
                Line::BeforeName
            }
            (Line::BeforeSemi | Line::BeforeName | Line::AfterName | Line::BeforeValue, _) if ws => state,
            (Line::BeforeName | Line::Name, _) if is_tchar(c) => Line::Name,
            (Line::Name, _) if ws => Line::AfterName,
            (Line::Name | Line::AfterName, b'=') => Line::BeforeValue,
            (Line::BeforeValue | Line::Token, _) if is_tchar(c) => Line::Token,
            (Line::BeforeValue, b'"') => Line::Quoted,
            (Line::Quoted, b'"') => Line::Closed,
            (Line::Quoted, b'\\') => Line::Escaped,
            // qdtext and quoted-pair: HTAB, SP, visible ASCII and obs-text; no other control byte.
            (Line::Quoted | Line::Escaped, _) if c == b'\t' || (c >= b' ' && c != 0x7f) => Line::Quoted,
            (Line::Size, _) => {
                return Err(if c == b'\n' { BAD_EOL } else { HttpError::new(400, "invalid chunk size") })
            }
            (Line::BeforeSemi, b'\r') => return Err(HttpError::new(400, "whitespace at the end of a chunk size line")),
            (_, b'\n') => return Err(BAD_EOL),
            _ => return Err(BAD_EXT),
        };
    }
    Ok(None)
}

/// The value of an ASCII hex digit.
fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Why a trailer section was refused.
#[derive(Debug)]
enum Malformed {
    /// The tokenizer refused a field.
    Fields,
    /// A line ended in LF alone.
    BareLf,
}

/// Steps over the trailer section at the start of `buf`, returning its length once complete.
///
/// Nothing here uses trailer fields, so they are not kept; but the tokenizer wants an initialized
/// slot per field, and clearing [`MAX_TRAILER_FIELDS`] slots for every chunked body would cost more
/// than parsing the usual trailer section, which is empty or holds a field or two. So the common
/// cases go first: no trailers at all, then a few slots, and the full array only for a request
/// with more fields than that (parsed again from the start, with the same outcome as if the full
/// array had been used at once).
fn trailer_section(buf: &[u8]) -> Result<httparse::Status<usize>, Malformed> {
    if buf.starts_with(b"\r\n") {
        return Ok(httparse::Status::Complete(2));
    }
    let mut few = [httparse::EMPTY_HEADER; 4];
    match httparse::parse_headers(buf, &mut few) {
        Err(httparse::Error::TooManyHeaders) => {
            let mut all = [httparse::EMPTY_HEADER; MAX_TRAILER_FIELDS];
            checked(buf, httparse::parse_headers(buf, &mut all))
        }
        other => checked(buf, other),
    }
}

/// The tokenizer's verdict on a trailer section in `buf`, with the bare LF line endings it
/// accepts refused (see [`crlf_lines`] for why).
fn checked(
    buf: &[u8],
    parsed: httparse::Result<(usize, &[httparse::Header<'_>])>,
) -> Result<httparse::Status<usize>, Malformed> {
    match parsed {
        Ok(httparse::Status::Complete((used, fields))) => {
            if crlf_lines(&buf[..used], fields.iter().map(|f| f.name.as_bytes())) {
                Ok(httparse::Status::Complete(used))
            } else {
                Err(Malformed::BareLf)
            }
        }
        Ok(httparse::Status::Partial) => Ok(httparse::Status::Partial),
        Err(_) => Err(Malformed::Fields),
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

    /// The status and reason for `raw`, decoded whole and split at every byte: the verdict must not
    /// depend on the split.
    fn refusal(raw: &[u8]) -> HttpError {
        let whole = decode_split(raw, raw.len()).expect_err("refused");
        for split in 0..raw.len() {
            assert_eq!(decode_split(raw, split).err(), Some(whole), "split at {split} of {:?}", raw.escape_ascii());
        }
        whole
    }

    /// Found by fuzzing: `httparse::parse_chunk_size` reads an empty line as the last chunk, so
    /// this body ended at once and the request after it was served on its own (smuggled).
    #[test]
    fn empty_or_blank_size_line_is_not_the_last_chunk() {
        let smuggled = b"\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(refusal(smuggled), HttpError::new(400, "chunk size must start with a hex digit"));
        for raw in [&b" \r\n0\r\n\r\n"[..], b"\t0\r\n\r\n", b";x\r\n0\r\n\r\n", b"\n0\r\n\r\n"] {
            assert_eq!(refusal(raw).status, 400, "{:?}", raw.escape_ascii());
        }
    }

    /// Found by fuzzing: a bare LF inside an extension was skipped over, so `hi` was the body here,
    /// where a peer that ends the line at the LF reads `xx` as the next size line.
    #[test]
    fn control_bytes_in_an_extension_are_refused() {
        assert_eq!(refusal(b"2;\nxx\r\nhi\r\n0\r\n\r\n"), HttpError::new(400, "chunk size line not ended by CRLF"));
        for raw in [
            &b"2;a\nb\r\nhi\r\n0\r\n\r\n"[..],
            b"2;a=\"x\ny\"\r\nhi\r\n0\r\n\r\n",
            b"2;a=\"x\x01\"\r\nhi\r\n0\r\n\r\n",
            b"2;a=\"x\\\x7f\"\r\nhi\r\n0\r\n\r\n",
            b"2;a\x00\r\nhi\r\n0\r\n\r\n",
            b"2;a=b\rc\r\nhi\r\n0\r\n\r\n",
            b"2\r\r\nhi\r\n0\r\n\r\n",
            b"2\nhi\r\n0\r\n\r\n",
        ] {
            assert_eq!(refusal(raw).status, 400, "{:?}", raw.escape_ascii());
        }
    }

    /// Every form RFC 9112 §7.1.1 allows, and the near misses it does not.
    #[test]
    fn size_line_grammar() {
        for line in [
            "2",
            "02",
            "0000000000000000000002",
            "2;a",
            "2;a=b",
            "2 ;a",
            "2\t; a",
            "2;a = b",
            "2;a;b=c;d",
            "2;a=\"\"",
            "2;a=\"x y;\\\"z\\\\\"",
            "2;a=\"\u{e9}\t\" ; b",
            "2;!#$%&'*+-.^_`|~=x",
        ] {
            let raw = format!("{line}\r\nhi\r\n0\r\n\r\nNEXT");
            for split in 0..=raw.len() {
                let (body, used) = decode_split(raw.as_bytes(), split).unwrap_or_else(|e| panic!("{line:?}: {e:?}"));
                assert_eq!((&body[..], &raw[used..]), (&b"hi"[..], "NEXT"), "{line:?} split at {split}");
            }
        }
        for line in [
            "",
            " ",
            "x",
            "-2",
            "+2",
            "0x2",
            "2 ",
            "2\t",
            "2;",
            "2;a=",
            "2;=b",
            "2 a",
            "2;a b",
            "2;a=b c",
            "2;a=\"b",
            "2;a=\"b\"c",
            "2;a=(b)",
            "2;a@b",
            "2,a",
            "2;a=b;",
            "2;a=\"b\" ",
        ] {
            let raw = format!("{line}\r\nhi\r\n0\r\n\r\n");
            assert_eq!(refusal(raw.as_bytes()).status, 400, "{line:?}");
        }
    }

    /// Sixteen hex digits are the most a size can have; leading zeros do not count.
    #[test]
    fn size_overflow_is_refused() {
        let max = b"ffffffffffffffff\r\n";
        assert_eq!(refusal(max).status, 413, "u64::MAX is a size, over any body limit");
        assert_eq!(refusal(b"10000000000000000\r\n"), HttpError::new(400, "chunk size does not fit in 64 bits"));
        assert_eq!(size_line(b"000000000000000000001\r\n"), Ok(Some((23, 1))));
        assert_eq!(size_line(b"fFfFfFfFfFfFfFfF\r\n"), Ok(Some((18, u64::MAX))));
    }

    /// A chunk's data must be followed by CRLF, not by anything else and not by a bare LF.
    #[test]
    fn data_not_followed_by_crlf_is_refused() {
        for raw in [&b"2\r\nhix\r\n0\r\n\r\n"[..], b"2\r\nhi\n0\r\n\r\n", b"2\r\nhi\rx0\r\n\r\n"] {
            assert_eq!(
                refusal(raw),
                HttpError::new(400, "chunk data not followed by CRLF"),
                "{:?}",
                raw.escape_ascii()
            );
        }
    }

    /// Trailer lines end in CRLF, and hold no control bytes.
    #[test]
    fn bad_trailers_are_refused() {
        for raw in [&b"0\r\n\n"[..], b"0\r\nX: 1\n\r\n", b"0\r\nX: 1\r\nY: 2\n\r\n", b"0\r\nX: 1\r\n\n"] {
            assert_eq!(refusal(raw), HttpError::new(400, "trailer line not ended by CRLF"), "{:?}", raw.escape_ascii());
        }
        for raw in
            [&b"0\r\nX: a\x01b\r\n\r\n"[..], b"0\r\nX: a\x00\r\n\r\n", b"0\r\nX y: 1\r\n\r\n", b"0\r\n folded\r\n\r\n"]
        {
            assert_eq!(refusal(raw), HttpError::new(400, "malformed trailer section"), "{:?}", raw.escape_ascii());
        }
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
