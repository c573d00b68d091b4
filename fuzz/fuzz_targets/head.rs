//! Fuzzes the request head parser, `flash_common::parse::parse_head`.
//!
//! Options bit 0 picks the limits: the defaults, or limits small enough (a 64-byte target, a
//! 256-byte head, 8 fields, a 512-byte body) that short inputs cross every one of them. For each
//! input the parser must not panic, and:
//!
//! - what it returns for the whole input is what it returned for any prefix that was not "need
//!   more bytes": a `Conn` parses the head again on every read, so a decision taken on a prefix
//!   is the one a client sending byte by byte gets, and it must not differ from the one a client
//!   sending at once gets;
//! - "need more bytes" is never the answer once more than `max_head` bytes are there (else a
//!   client could make a connection buffer without end);
//! - a complete head respects every limit, all its spans lie inside it, and what an application
//!   reads of it (path, query, fields) comes without a panic.
//!
//! The prefixes are parsed into one reused `Head`, as a `Conn` reuses its own, so that nothing
//! from an earlier parse may leak into a later one.

#![no_main]

use flash_common::parse::{parse_head, Head, HttpError, Limits};
use flash_common::Request;
use flash_fuzz::Input;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Input { options, mut rng, data } = Input::new(input);
    let limits = if options & 1 == 0 {
        Limits::default()
    } else {
        Limits { max_target: 64, max_head: 256, max_headers: 8, max_body: 512 }
    };
    let mut head = Head::default();
    let whole = parse_head(data, &limits, &mut head);
    check(&whole, &head, data, &limits);
    let whole_head = format!("{head:?}");

    let mut reused = Head::default();
    for cut in rng.cuts(data.len()) {
        let prefix = &data[..cut];
        match parse_head(prefix, &limits, &mut reused) {
            Ok(None) => assert!(
                prefix.len() <= limits.max_head,
                "{} bytes without a verdict, over max_head {}",
                prefix.len(),
                limits.max_head
            ),
            verdict => {
                assert_eq!(verdict, whole, "the first {cut} bytes were judged otherwise than all {}", data.len());
                if let Ok(Some(_)) = verdict {
                    assert_eq!(format!("{reused:?}"), whole_head, "a head parsed from {cut} bytes");
                }
            }
        }
    }
});

/// What must hold of the parser's verdict on `data`.
fn check(verdict: &Result<Option<usize>, HttpError>, head: &Head, data: &[u8], limits: &Limits) {
    match *verdict {
        Ok(None) => assert!(data.len() <= limits.max_head, "no verdict on {} bytes", data.len()),
        Ok(Some(len)) => {
            assert!(len <= data.len() && len <= limits.max_head && head.len == len, "length {len}");
            assert!(data[..len].ends_with(b"\n"), "a head ends with its blank line");
            let target = head.target.get(data);
            assert!(target.len() <= limits.max_target, "a target of {} bytes", target.len());
            assert!(head.headers.len() <= limits.max_headers, "{} fields", head.headers.len());
            assert!(head.minor <= 1, "HTTP/1.{}", head.minor);
            assert!(!head.method.get(data).is_empty(), "an empty method");
            let spans = [head.method, head.target].into_iter().chain(head.headers.iter().flat_map(|&(n, v)| [n, v]));
            for span in spans {
                assert!(span.start <= span.end && span.end as usize <= len, "{span:?} outside the head");
            }
            if let flash_common::parse::Framing::Length(n) = head.framing {
                assert!(n <= limits.max_body, "a body of {n} bytes accepted");
            }
            // What an application reads of the request must not panic either.
            let req = Request::new(data, head, b"", "127.0.0.1:1".parse().expect("an address"));
            let _ = (req.method(), req.target(), req.query(), req.query_param("x"), req.header("host"));
            let _ = flash_common::request::percent_decode(req.path());
            assert_eq!(req.headers().count(), head.headers.len());
        }
        Err(e) => assert!((400..=599).contains(&e.status) && !e.reason.is_empty(), "{e:?}"),
    }
}
