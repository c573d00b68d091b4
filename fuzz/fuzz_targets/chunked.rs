//! Fuzzes the in-place chunked decoder, `flash_common::chunked::ChunkedDecoder`.
//!
//! The data is decoded twice: whole, in one call, and split, fed in pieces the way a `Conn`
//! receives them, sometimes closing the gap between decoded and encoded bytes between two calls
//! as `Conn::reclaim` does. Options bit 0 picks the body limit (64 bytes or 1 MiB). It must never
//! panic, never write past what it has read (`write <= read <= len`: the decoding is in place),
//! and the split run must end exactly as the whole one: the same body and the same number of
//! bytes consumed, the same error, or both still waiting with the same body so far.
//!
//! The decoder is also held to the grammar of RFC 9112 §7.1 by [`reference`], a plain decoder
//! written from the RFC's ABNF with no limits and no resuming: every body the decoder accepts,
//! the grammar must accept with the same bytes and the same end (a body ended early, or framed
//! around a byte a peer reads otherwise, is request smuggling), and every body the grammar
//! accepts within the decoder's limits, the decoder must accept. Line endings are CRLF only, as
//! the decoder requires.

#![no_main]

use flash_common::chunked::ChunkedDecoder;
use flash_common::parse::HttpError;
use flash_fuzz::{is_tchar, Input};
use libfuzzer_sys::fuzz_target;

/// The decoder's limits on the lines it waits for (`common/src/chunked.rs`).
const MAX_SIZE_LINE: usize = 4096;
/// See [`MAX_SIZE_LINE`].
const MAX_TRAILERS: usize = 4 * MAX_SIZE_LINE;
/// See [`MAX_SIZE_LINE`].
const MAX_TRAILER_FIELDS: usize = 32;

/// How a decoding run ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The whole body: its decoded bytes, and how many encoded bytes it took.
    Body(Vec<u8>, usize),
    /// Waiting for more, with the body decoded so far.
    Waiting(Vec<u8>),
    /// Refused.
    Refused(HttpError),
}

fuzz_target!(|input: &[u8]| {
    let Input { options, mut rng, data } = Input::new(input);
    let max_body = if options & 1 == 0 { 64 } else { 1 << 20 };

    let mut buf = data.to_vec();
    let (mut read, mut write) = (0, 0);
    let whole = match ChunkedDecoder::default().decode(&mut buf, &mut read, &mut write, max_body) {
        Ok(true) => End::Body(buf[..write].to_vec(), read),
        Ok(false) => End::Waiting(buf[..write].to_vec()),
        Err(e) => End::Refused(e),
    };
    assert!(write <= read && read <= data.len(), "write {write}, read {read}, len {}", data.len());

    // The split run: `buf` holds what has been received, `removed` counts the bytes taken out
    // of it by closing gaps, so that `removed + read` is a position in `data`.
    let mut decoder = ChunkedDecoder::default();
    let (mut buf, mut read, mut write, mut removed) = (Vec::new(), 0, 0, 0);
    let mut split = End::Waiting(Vec::new());
    for piece in rng.cuts(data.len()).windows(2) {
        buf.extend_from_slice(&data[piece[0]..piece[1]]);
        let verdict = decoder.decode(&mut buf, &mut read, &mut write, max_body);
        assert!(write <= read && read <= buf.len(), "write {write}, read {read}, len {}", buf.len());
        split = match verdict {
            Ok(true) => End::Body(buf[..write].to_vec(), removed + read),
            Ok(false) => End::Waiting(buf[..write].to_vec()),
            Err(e) => End::Refused(e),
        };
        if !matches!(split, End::Waiting(_)) {
            break;
        }
        if rng.one_in(2) {
            buf.drain(write..read);
            removed += read - write;
            read = write;
        }
    }
    assert_eq!(split, whole, "split and whole decodings differ");

    match (&whole, reference(data)) {
        (End::Body(body, used), Grammar::Body { body: expected, used: expected_used, .. }) => {
            assert_eq!((body, *used), (&expected, expected_used), "the decoder and the grammar read different bodies")
        }
        (End::Body(..), Grammar::Invalid(why)) => panic!("the decoder accepted a body the grammar refuses: {why}"),
        (End::Body(..), Grammar::Incomplete) => panic!("the decoder accepted a body the grammar has not seen end"),
        (_, Grammar::Body { body, longest_line, trailers, fields, .. })
            if body.len() as u64 <= max_body
                && longest_line <= MAX_SIZE_LINE
                && trailers <= MAX_TRAILERS
                && fields <= MAX_TRAILER_FIELDS =>
        {
            panic!("the decoder ended with {whole:?} on a body the grammar accepts within the limits")
        }
        _ => {}
    }
});

/// What the grammar says of some bytes.
#[derive(Debug)]
enum Grammar {
    /// A complete chunked body.
    Body {
        /// The chunk data, concatenated.
        body: Vec<u8>,
        /// How many bytes the body took, up to its final CRLF.
        used: usize,
        /// The longest chunk-size line, CRLF included.
        longest_line: usize,
        /// The trailer section's length, final CRLF included.
        trailers: usize,
        /// How many trailer fields there were.
        fields: usize,
    },
    /// A valid beginning: more bytes are needed.
    Incomplete,
    /// Not a chunked body, for the reason given.
    Invalid(&'static str),
}

/// Why [`reference`] stopped early.
enum Stop {
    /// The bytes ran out.
    More,
    /// A byte broke the grammar.
    Bad(&'static str),
}

/// Decodes `data` by the ABNF of RFC 9112 §7.1 and RFC 9110 §5.6:
///
/// ```text
/// chunked-body = *chunk last-chunk trailer-section CRLF
/// chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
/// last-chunk   = 1*("0") [ chunk-ext ] CRLF
/// chunk-size   = 1*HEXDIG
/// chunk-ext    = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
/// chunk-ext-name = token;  chunk-ext-val = token / quoted-string
/// trailer-section = *( field-line CRLF )
/// field-line   = field-name ":" OWS field-value OWS;  field-name = token
/// field-value  = *( field-vchar / SP / HTAB ), starting and ending with a field-vchar
/// ```
///
/// A size needs at most 16 significant hex digits: a larger one cannot be a length.
fn reference(data: &[u8]) -> Grammar {
    let mut p = Parser { data, at: 0 };
    match p.body() {
        Ok(g) => g,
        Err(Stop::More) => Grammar::Incomplete,
        Err(Stop::Bad(why)) => Grammar::Invalid(why),
    }
}

/// A cursor over the bytes [`reference`] reads.
struct Parser<'a> {
    /// The bytes.
    data: &'a [u8],
    /// The next byte to read.
    at: usize,
}

impl Parser<'_> {
    fn body(&mut self) -> Result<Grammar, Stop> {
        let (mut body, mut longest_line) = (Vec::new(), 0);
        loop {
            let line_start = self.at;
            let size = self.size()?;
            self.extensions()?;
            self.crlf("a chunk-size line not ended by CRLF")?;
            longest_line = longest_line.max(self.at - line_start);
            if size == 0 {
                break;
            }
            let size = usize::try_from(size).map_err(|_| Stop::More)?;
            let chunk = self.data.get(self.at..).ok_or(Stop::More)?;
            if chunk.len() < size {
                return Err(Stop::More);
            }
            body.extend_from_slice(&chunk[..size]);
            self.at += size;
            self.crlf("chunk data not followed by CRLF")?;
        }
        let (trailers_start, mut fields) = (self.at, 0);
        while self.peek()? != b'\r' {
            self.field_line()?;
            fields += 1;
        }
        self.crlf("the trailer section not ended by CRLF")?;
        Ok(Grammar::Body { body, used: self.at, longest_line, trailers: self.at - trailers_start, fields })
    }

    fn peek(&self) -> Result<u8, Stop> {
        self.data.get(self.at).copied().ok_or(Stop::More)
    }

    fn eat(&mut self, byte: u8) -> Result<bool, Stop> {
        let found = self.peek()? == byte;
        self.at += usize::from(found);
        Ok(found)
    }

    fn crlf(&mut self, why: &'static str) -> Result<(), Stop> {
        if self.eat(b'\r')? && self.eat(b'\n')? {
            Ok(())
        } else {
            Err(Stop::Bad(why))
        }
    }

    fn size(&mut self) -> Result<u64, Stop> {
        let (start, mut size, mut significant) = (self.at, 0u64, 0);
        while let Some(digit) = (self.peek()? as char).to_digit(16) {
            significant += usize::from(significant > 0 || digit > 0);
            if significant > 16 {
                return Err(Stop::Bad("a chunk size over 64 bits"));
            }
            size = size << 4 | u64::from(digit);
            self.at += 1;
        }
        if self.at == start {
            return Err(Stop::Bad("a chunk-size line without a hex digit"));
        }
        Ok(size)
    }

    /// Skips BWS, then returns whether `byte` follows; if it does not, the whitespace is given
    /// back (BWS belongs to what follows it, so whitespace at the end of the line is an error).
    fn after_ws(&mut self, byte: u8) -> Result<bool, Stop> {
        let start = self.at;
        while matches!(self.peek()?, b' ' | b'\t') {
            self.at += 1;
        }
        if self.eat(byte)? {
            Ok(true)
        } else {
            self.at = start;
            Ok(false)
        }
    }

    fn extensions(&mut self) -> Result<(), Stop> {
        while self.after_ws(b';')? {
            while matches!(self.peek()?, b' ' | b'\t') {
                self.at += 1;
            }
            self.token("a chunk extension without a name")?;
            if self.after_ws(b'=')? {
                while matches!(self.peek()?, b' ' | b'\t') {
                    self.at += 1;
                }
                if self.peek()? == b'"' {
                    self.quoted_string()?;
                } else {
                    self.token("a chunk extension value neither a token nor a quoted string")?;
                }
            }
        }
        Ok(())
    }

    fn token(&mut self, why: &'static str) -> Result<(), Stop> {
        let start = self.at;
        while is_tchar(self.peek()?) {
            self.at += 1;
        }
        if self.at == start {
            return Err(Stop::Bad(why));
        }
        Ok(())
    }

    fn quoted_string(&mut self) -> Result<(), Stop> {
        self.at += 1;
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Ok(());
                }
                b'\\' => {
                    self.at += 1;
                    let c = self.peek()?;
                    if !(c == b'\t' || c == b' ' || is_vchar(c) || c >= 0x80) {
                        return Err(Stop::Bad("a quoted-pair of a control byte"));
                    }
                    self.at += 1;
                }
                c if c == b'\t' || c == b' ' || c == 0x21 || (0x23..=0x7e).contains(&c) || c >= 0x80 => self.at += 1,
                _ => return Err(Stop::Bad("a control byte in a quoted string")),
            }
        }
    }

    fn field_line(&mut self) -> Result<(), Stop> {
        self.token("a trailer field without a valid name")?;
        if !self.eat(b':')? {
            return Err(Stop::Bad("a trailer field name not followed by a colon"));
        }
        // OWS, field-value and OWS together: any run of field-vchar, SP and HTAB.
        loop {
            let c = self.peek()?;
            if c == b'\t' || c == b' ' || is_vchar(c) || c >= 0x80 {
                self.at += 1;
            } else {
                break;
            }
        }
        self.crlf("a trailer field not ended by CRLF")
    }
}

/// A visible ASCII character.
fn is_vchar(c: u8) -> bool {
    (0x21..=0x7e).contains(&c)
}
