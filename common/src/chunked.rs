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

use crate::parse::{cr_before, ends_in_crlf, is_tchar, HttpError};

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
/// one per place where a different set of bytes may come next, then the outcomes that end a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Line {
    /// Right after the hex digits.
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
    /// The line is complete (the first outcome: every state from here on ends the line).
    Done,
    /// A bare CR or LF.
    BadEol,
    /// A byte the extension grammar does not allow there.
    BadExt,
    /// A byte that is neither a hex digit nor what may follow the digits.
    BadSize,
    /// Whitespace right before the CR.
    WsAtEnd,
}

/// The classes of byte the grammar tells apart: each of these separately, a token character,
/// other text a quoted string may hold (visible ASCII and obs-text), and control bytes.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Class {
    /// `\n`.
    Lf,
    /// `\r`.
    Cr,
    /// Space or horizontal tab.
    Ws,
    /// `;`.
    Semi,
    /// `=`.
    Eq,
    /// `"`.
    DQuote,
    /// `\`.
    Backslash,
    /// A token character (RFC 9110 §5.6.2).
    Token,
    /// Any other byte a quoted string may hold: the remaining visible ASCII, and obs-text.
    Text,
    /// A control byte other than those above, or DEL.
    Ctl,
}

/// How many states and classes there are: the transition table's shape.
const STATES: usize = Line::Done as usize;
/// See [`STATES`].
const CLASSES: usize = Class::Ctl as usize + 1;

/// The grammar as a transition function, written once as rules and turned into [`TRANSITIONS`] at
/// compile time: per byte, a table lookup beats trying these rules in order.
const fn step(state: Line, class: Class) -> Line {
    use Class as C;
    use Line as L;
    match (state, class) {
        (L::Cr, C::Lf) => L::Done,
        (L::Cr, _) => L::BadEol,
        (L::Size | L::Name | L::Token | L::Closed, C::Cr) => L::Cr,
        (L::Size | L::Token | L::Closed, C::Ws) => L::BeforeSemi,
        (L::Size | L::BeforeSemi | L::Name | L::AfterName | L::Token | L::Closed, C::Semi) => L::BeforeName,
        (L::BeforeSemi | L::BeforeName | L::AfterName | L::BeforeValue, C::Ws) => state,
        (L::BeforeName | L::Name, C::Token) => L::Name,
        (L::Name, C::Ws) => L::AfterName,
        (L::Name | L::AfterName, C::Eq) => L::BeforeValue,
        (L::BeforeValue | L::Token, C::Token) => L::Token,
        (L::BeforeValue, C::DQuote) => L::Quoted,
        (L::Quoted, C::DQuote) => L::Closed,
        (L::Quoted, C::Backslash) => L::Escaped,
        // qdtext and quoted-pair: HTAB, SP, visible ASCII and obs-text; no other control byte.
        (L::Quoted | L::Escaped, C::Ws | C::Semi | C::Eq | C::Token | C::Text)
        | (L::Escaped, C::DQuote | C::Backslash) => L::Quoted,
        (L::Size, C::Lf) => L::BadEol,
        (L::Size, _) => L::BadSize,
        (L::BeforeSemi, C::Cr) => L::WsAtEnd,
        (_, C::Lf) => L::BadEol,
        _ => L::BadExt,
    }
}

/// [`step`] for every state and class.
static TRANSITIONS: [[Line; CLASSES]; STATES] = {
    const ALL: [Class; CLASSES] = [
        Class::Lf,
        Class::Cr,
        Class::Ws,
        Class::Semi,
        Class::Eq,
        Class::DQuote,
        Class::Backslash,
        Class::Token,
        Class::Text,
        Class::Ctl,
    ];
    const LINES: [Line; STATES] = [
        Line::Size,
        Line::BeforeSemi,
        Line::BeforeName,
        Line::Name,
        Line::AfterName,
        Line::BeforeValue,
        Line::Token,
        Line::Quoted,
        Line::Escaped,
        Line::Closed,
        Line::Cr,
    ];
    let mut table = [[Line::BadExt; CLASSES]; STATES];
    let mut s = 0;
    while s < STATES {
        let mut c = 0;
        while c < CLASSES {
            table[s][c] = step(LINES[s], ALL[c]);
            c += 1;
        }
        s += 1;
    }
    table
};

/// The class of every byte.
static BYTE_CLASSES: [Class; 256] = {
    let mut table = [Class::Text; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        table[c] = match b {
            b'\n' => Class::Lf,
            b'\r' => Class::Cr,
            b' ' | b'\t' => Class::Ws,
            b';' => Class::Semi,
            b'=' => Class::Eq,
            b'"' => Class::DQuote,
            b'\\' => Class::Backslash,
            0..=0x1f | 0x7f => Class::Ctl,
            _ if is_tchar(b) => Class::Token,
            _ => Class::Text,
        };
        c += 1;
    }
    table
};

/// Parses the chunk-size line at the start of `buf`: `Some((length, size))` once it is complete,
/// `None` if more bytes are needed, or the error.
///
/// The bytes are judged left to right and the first one that breaks the grammar decides, so the
/// answer for any prefix of a line is "need more" or the same error as for the whole line: the
/// decoder may stop and restart the line anywhere without the verdict depending on where.
fn size_line(buf: &[u8]) -> Result<Option<(usize, u64)>, HttpError> {
    let digits = buf.iter().take_while(|c| c.is_ascii_hexdigit()).count();
    if digits == 0 {
        return match buf {
            [] => Ok(None),
            _ => Err(HttpError::new(400, "chunk size must start with a hex digit")),
        };
    }
    // Leading zeros are allowed; a 17th significant digit is not.
    let significant = &buf[buf[..digits].iter().take_while(|&&c| c == b'0').count()..digits];
    if significant.len() > 16 {
        return Err(HttpError::new(400, "chunk size does not fit in 64 bits"));
    }
    let size = significant.iter().fold(0, |size, &c| size << 4 | hex(c));
    // Nearly every line is digits and CRLF; extensions take the long way.
    match &buf[digits..] {
        [] | [b'\r'] => Ok(None),
        [b'\r', b'\n', ..] => Ok(Some((digits + 2, size))),
        _ => Ok(chunk_ext(buf, digits)?.map(|len| (len, size))),
    }
}

/// Steps over the rest of a chunk-size line from `buf[at]`, right after the digits, to the end of
/// its CRLF: `Some(length of the line)` once complete, `None` if more bytes are needed.
fn chunk_ext(buf: &[u8], at: usize) -> Result<Option<usize>, HttpError> {
    let mut state = Line::Size;
    for (i, &c) in buf.iter().enumerate().skip(at) {
        state = TRANSITIONS.get(state as usize).map_or(Line::BadExt, |row| row[BYTE_CLASSES[c as usize] as usize]);
        if state as u8 >= Line::Done as u8 {
            return match state {
                Line::Done => Ok(Some(i + 1)),
                Line::BadEol => Err(HttpError::new(400, "chunk size line not ended by CRLF")),
                Line::BadSize => Err(HttpError::new(400, "invalid chunk size")),
                Line::WsAtEnd => Err(HttpError::new(400, "whitespace at the end of a chunk size line")),
                _ => Err(HttpError::new(400, "invalid chunk extension (only token=value or a quoted string)")),
            };
        }
    }
    Ok(None)
}

/// The value of an ASCII hex digit (`c` is one).
fn hex(c: u8) -> u64 {
    u64::from(match c {
        b'0'..=b'9' => c - b'0',
        _ => (c | 0x20) - b'a' + 10,
    })
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
/// accepts refused (see [`ends_in_crlf`] for why).
fn checked(
    buf: &[u8],
    parsed: httparse::Result<(usize, &[httparse::Header<'_>])>,
) -> Result<httparse::Status<usize>, Malformed> {
    match parsed {
        Ok(httparse::Status::Complete((used, fields))) => {
            let section = &buf[..used];
            let name_at = |f: &httparse::Header<'_>| f.name.as_ptr() as usize - buf.as_ptr() as usize;
            // The first field's line follows the last chunk's, whose CRLF the size line checked.
            if ends_in_crlf(section) && fields.iter().skip(1).all(|f| cr_before(section, name_at(f))) {
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
