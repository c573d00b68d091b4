//! Proof that the hot path does not touch the heap: a counting global allocator, and a count of
//! allocations over a thousand requests after one to warm up.
//!
//! The parser promises zero allocations per request once a connection has warmed up (its header
//! list is a `Vec` reused between requests, and everything else is spans and stack space); the
//! connection promises the same for a keep-alive `GET /hello` (a static body, fields encoded into
//! a reused output buffer). A heap allocation per request is a lock-free but not free call, and
//! on an event loop serving thousands of connections it is the difference between a hot path
//! that stays in cache and one that does not. These tests make the promise checkable: one stray
//! `to_string()` on the path fails them.
//!
//! Only allocations made by the test's own thread, between [`count`]'s start and end, are
//! counted, so tests running in parallel (and the harness) do not disturb each other.

mod fixtures;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::net::SocketAddr;

use fixtures::{BROWSER_GET, CHUNKED_HEAD, CHUNKED_POST, MINIMAL_GET};
use flash_common::app::Hello;
use flash_common::chunked::ChunkedDecoder;
use flash_common::parse::{parse_head, Framing, Head, Limits};
use flash_common::{Config, Conn, Site};

/// The system allocator, counting the allocations of threads that asked it to.
struct Counting;

thread_local! {
    /// Whether this thread's allocations are being counted now.
    static ARMED: Cell<bool> = const { Cell::new(false) };
    /// This thread's allocations since counting started.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// Counts one allocation if this thread is counting. `try_with` because the allocator may be
/// called while thread-locals are being torn down.
fn note() {
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            ALLOCATIONS.with(|n| n.set(n.get() + 1));
        }
    });
}

// SAFETY: every method forwards to `System` with the arguments it was given, so `Counting`
// upholds `GlobalAlloc`'s contract exactly as `System` does; counting touches only const
// thread-locals without destructors, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller upholds `alloc`'s contract for `layout`; passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: `ptr` was allocated by `System` (every allocation goes through this type) with
        // `layout`, as the caller guarantees; passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `realloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns how many allocations this thread made during it.
fn count(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|n| n.set(0));
    ARMED.with(|a| a.set(true));
    f();
    ARMED.with(|a| a.set(false));
    ALLOCATIONS.with(Cell::get)
}

/// How many requests each test counts over.
const ROUNDS: usize = 1000;

/// Parses `raw` once and checks it parsed whole, with `headers` fields.
fn parse_checked(raw: &[u8], limits: &Limits, head: &mut Head, headers: usize) {
    let len = parse_head(black_box(raw), limits, head).expect("valid").expect("complete");
    assert_eq!(head.headers.len(), headers);
    assert!(len <= raw.len());
}

/// Counts the allocations of [`ROUNDS`] parses of `raw` after one to warm the `Head` up.
fn head_allocations(raw: &[u8], headers: usize) -> u64 {
    let limits = Limits::default();
    let mut head = Head::default();
    parse_checked(raw, &limits, &mut head, headers);
    count(|| {
        for _ in 0..ROUNDS {
            parse_checked(raw, &limits, &mut head, headers);
        }
    })
}

#[test]
fn minimal_get_head_allocates_nothing() {
    assert_eq!(head_allocations(MINIMAL_GET, 1), 0);
}

#[test]
fn browser_get_head_allocates_nothing() {
    assert_eq!(head_allocations(BROWSER_GET, 12), 0);
}

#[test]
fn chunked_post_head_and_body_allocate_nothing() {
    let limits = Limits::default();
    let mut head = Head::default();
    // The decoder works in place, so each round decodes a fresh copy, into a buffer made once.
    let mut buf = CHUNKED_POST.to_vec();
    let round = |head: &mut Head, buf: &mut [u8]| {
        buf.copy_from_slice(CHUNKED_POST);
        let len = parse_head(black_box(buf), &limits, head).expect("valid").expect("complete");
        assert_eq!((len, head.framing), (CHUNKED_HEAD, Framing::Chunked));
        let (mut read, mut write) = (len, len);
        let mut decoder = ChunkedDecoder::default();
        assert!(decoder.decode(buf, &mut read, &mut write, limits.max_body).expect("valid body"));
        assert_eq!(&buf[len..write], b"hello, world");
        assert_eq!(read, buf.len());
    };
    round(&mut head, &mut buf);
    assert_eq!(count(|| (0..ROUNDS).for_each(|_| round(&mut head, &mut buf))), 0);
}

/// A keep-alive `GET /hello` through the whole connection state machine and an application that
/// answers as the demo's `/hello` does:
/// receive, process, output, wrote, driven as 04 drives it (`output()` only while `wants_write()`).
/// No access log (`--quiet`, as benchmarks run). This is what caught the output buffer growing
/// by every response (about ten reallocations per thousand requests) when `output()` was the
/// only place it started over.
#[test]
fn keep_alive_hello_through_conn_allocates_nothing() {
    let site = Site::new(Config::for_tests(), std::sync::Arc::new(Hello)).unwrap();
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut conn = Conn::new(&site, peer);
    let request = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut one = || {
        let room = conn.read_buf();
        room[..request.len()].copy_from_slice(request);
        conn.received(request.len());
        conn.process(|req| site.call(req));
        let out = conn.output();
        assert!(out.ends_with(b"\r\n\r\nHello, world!"), "{}", out.escape_ascii());
        let n = out.len();
        conn.wrote(n);
        assert!(conn.is_idle());
    };
    // The first request allocates the connection's buffers; after it, nothing should (the
    // `Date` value, refreshed once a second, is formatted into an array: a run that crosses a
    // second boundary must allocate nothing either).
    one();
    let n = count(|| (0..ROUNDS).for_each(|_| one()));
    assert_eq!(n, 0, "allocations over {ROUNDS} keep-alive GET /hello");
}
