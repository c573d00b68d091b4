//! What our parser costs over the tokenizer it is built on: `flash_common::parse::parse_head`
//! against raw `httparse::Request::parse`, on three named requests.
//!
//! `httparse` only tokenizes. `parse_head` also decides everything RFC 9112 leaves to a server
//! (framing, persistence, `Host`, `Expect`, known methods, limits) and records the fields as spans
//! in a `Head` reused between requests, as a connection does. The ratio ours / httparse is
//! therefore the price of those decisions; the goal is at most 1.3 on each fixture.
//!
//! Each group runs three functions on the same bytes, so ratios read off side by side:
//! `minimal_get/ours`, `minimal_get/httparse` (`Request::parse` with a fresh array of 16 empty
//! fields, the way httparse's README and its own benches call it) and
//! `minimal_get/httparse_uninit` (uninitialized field slots, the form `parse_head` calls: the
//! tokenizer's floor, so that the ratio cannot hide behind an array initialization). Throughput
//! is the bytes parsed. Every iteration asserts the parsed length and field count, so that a parse
//! that broke and returned early cannot look fast (the style of httparse's `benches/parse.rs`).
//!
//! Run: `cargo bench -p flash-benchmarks --bench parser -- --warm-up-time 1 --measurement-time 3`.
//! Instruction counts, which a shared machine's noise does not touch: run the bench binary under
//! `valgrind --tool=callgrind` with `--bench --profile-time 1 '^minimal_get/ours$'` and divide the
//! inclusive cost of `our_head` (or `httparse_head`, ...) by its number of calls.

#[path = "../../common/tests/fixtures/mod.rs"]
mod fixtures;

use std::hint::black_box;
use std::mem::MaybeUninit;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fixtures::{BROWSER_GET, CHUNKED_HEAD, CHUNKED_POST, MINIMAL_GET};
use flash_common::chunked::ChunkedDecoder;
use flash_common::parse::{parse_head, Framing, Head, Limits};

/// Header slots for the raw tokenizer: as many as httparse's own benches give it.
const SLOTS: usize = 16;

/// Raw `httparse::Request::parse` on `raw`, the way its README and its own benches call it (a
/// fresh array of empty headers each time): returns (head length, field count). Not inlined, like
/// `our_head`, so that a profiler (`valgrind --tool=callgrind`) can count each one's instructions
/// per call.
#[inline(never)]
fn httparse_head(raw: &[u8]) -> (usize, usize) {
    let mut headers = [httparse::EMPTY_HEADER; SLOTS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(raw) {
        Ok(httparse::Status::Complete(len)) => (len, req.headers.len()),
        other => panic!("httparse: {other:?}"),
    }
}

/// The same with uninitialized header slots, the form `parse_head` itself calls: the least the
/// tokenizer can cost, and so the strictest baseline.
#[inline(never)]
fn httparse_uninit_head(raw: &[u8]) -> (usize, usize) {
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; SLOTS];
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(raw, &mut headers) {
        Ok(httparse::Status::Complete(len)) => (len, req.headers.len()),
        other => panic!("httparse: {other:?}"),
    }
}

/// Our parser on `raw` into a reused `head`: returns the head length.
#[inline(never)]
fn our_head(raw: &[u8], limits: &Limits, head: &mut Head) -> usize {
    match parse_head(raw, limits, head) {
        Ok(Some(len)) => len,
        other => panic!("parse_head: {other:?}"),
    }
}

/// The two parsers on one request's head: ours with every decision, httparse tokenizing.
fn head_group(c: &mut Criterion, name: &str, raw: &'static [u8], head_len: usize, fields: usize, framing: Framing) {
    let limits = Limits::default();
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(head_len as u64));
    let mut head = Head::default();
    group.bench_function("ours", |b| {
        b.iter(|| {
            assert_eq!(our_head(black_box(raw), &limits, &mut head), head_len);
            assert_eq!(head.headers.len(), fields);
            assert_eq!(head.framing, framing);
        })
    });
    group.bench_function("httparse", |b| {
        b.iter(|| {
            assert_eq!(httparse_head(black_box(raw)), (head_len, fields));
        })
    });
    group.bench_function("httparse_uninit", |b| {
        b.iter(|| {
            assert_eq!(httparse_uninit_head(black_box(raw)), (head_len, fields));
        })
    });
    group.finish();
}

fn heads(c: &mut Criterion) {
    head_group(c, "minimal_get", MINIMAL_GET, MINIMAL_GET.len(), 1, Framing::None);
    head_group(c, "browser_get", BROWSER_GET, BROWSER_GET.len(), 12, Framing::None);
    // The chunked POST's head alone: ours includes deciding that the body is chunked (and checking
    // that no Content-Length contradicts it); httparse only tokenizes the same bytes. Both are
    // handed the whole request, body included, as a connection's buffer would be.
    head_group(c, "chunked_post_head", CHUNKED_POST, CHUNKED_HEAD, 3, Framing::Chunked);
}

/// Ours on the whole chunked POST in `buf` (a fresh copy of it): the head, then the body decoded
/// in place, as a connection does. Returns (request length, body length).
#[inline(never)]
fn our_whole(buf: &mut [u8], limits: &Limits, head: &mut Head) -> (usize, usize) {
    let len = our_head(buf, limits, head);
    assert_eq!(head.framing, Framing::Chunked);
    let (mut read, mut write) = (len, len);
    let done = ChunkedDecoder::default().decode(buf, &mut read, &mut write, limits.max_body);
    assert_eq!(done, Ok(true));
    (read, write - len)
}

/// The least any decoder of the same request must do, with httparse's own functions: tokenize the
/// head, each chunk-size line and the trailer section, and step over the data. Returns (request
/// length, body length).
#[inline(never)]
fn httparse_whole(buf: &[u8]) -> (usize, usize) {
    let (mut at, fields) = httparse_head(buf);
    assert_eq!((at, fields), (CHUNKED_HEAD, 3));
    let mut body = 0;
    loop {
        let Ok(httparse::Status::Complete((used, size))) = httparse::parse_chunk_size(&buf[at..]) else {
            panic!("chunk size at {at}");
        };
        at += used;
        if size == 0 {
            break;
        }
        at += size as usize + 2;
        body += size as usize;
    }
    let mut trailers = [httparse::EMPTY_HEADER; 4];
    let Ok(httparse::Status::Complete((used, _))) = httparse::parse_headers(&buf[at..], &mut trailers) else {
        panic!("trailers at {at}");
    };
    (at + used, body)
}

/// The chunked POST whole: ours parses the head and decodes the body in place; the raw side does
/// the least any decoder must ([`httparse_whole`]). Both copy the request into a scratch buffer
/// first (ours decodes in place and so needs a fresh copy each time); the copy is the same on
/// both sides.
fn chunked_whole(c: &mut Criterion) {
    let limits = Limits::default();
    let mut group = c.benchmark_group("chunked_post_whole");
    group.throughput(Throughput::Bytes(CHUNKED_POST.len() as u64));
    let mut buf = CHUNKED_POST.to_vec();
    let mut head = Head::default();
    let want = (CHUNKED_POST.len(), "hello, world".len());
    group.bench_function("ours", |b| {
        b.iter(|| {
            buf.copy_from_slice(black_box(CHUNKED_POST));
            assert_eq!(our_whole(&mut buf, &limits, &mut head), want);
        })
    });
    group.bench_function("httparse", |b| {
        b.iter(|| {
            buf.copy_from_slice(black_box(CHUNKED_POST));
            assert_eq!(httparse_whole(&buf), want);
        })
    });
    group.finish();
}

criterion_group!(benches, heads, chunked_whole);
criterion_main!(benches);
