//! Fuzzes a whole connection, `flash_common::Conn`, fed arbitrary bytes in arbitrary pieces.
//!
//! Options bit 0 picks the limits (the defaults, or small ones that short inputs cross); bit 1
//! the application: `flash_common::app::Hello`, or [`Deferring`], which answers some requests
//! at once and defers the others (`Reply::Later`), whose answers the driver then sends in a
//! scrambled order, some as soon as they can go, some only when nothing else can move.
//!
//! The connection is driven by `flash_common::drive` (the loop the split property test uses),
//! once with all the data in one piece and written at once, once cut at seeded points and
//! written in short writes. It must never panic, and:
//!
//! - both runs say exactly the same thing and end in the same state;
//! - answers go out in request order, every request handed to the application is answered,
//!   and never more than `MAX_OWED` answers are owed at once;
//! - the application is never handed a request over a limit (target, fields, body);
//! - the buffers stay bounded: the input buffer by the largest request the limits allow and by
//!   the input's own size, the output buffer by its high-water mark plus one batch.

#![no_main]

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use flash_common::app::Hello;
use flash_common::conn::MAX_OWED;
use flash_common::drive::{drive, show, Run};
use flash_common::parse::Limits;
use flash_common::reply::{deferred, Responder};
use flash_common::{App, Config, Reply, Request, Response, Site};
use flash_fuzz::{fingerprint, Input, Rng};
use libfuzzer_sys::fuzz_target;

/// The longest chunk-size line and trailer section the decoder waits for
/// (`common/src/chunked.rs`): a request's encoded body may need this much beyond its decoded
/// size in the buffer.
const DECODER_LINES: usize = 4096 + 16 * 1024;
/// The output a connection lets wait for a client before it stops answering (`OUT_HIGH_WATER`
/// in `common/src/conn.rs`), plus a batch of answers at most this target's size.
const OUTPUT_BOUND: usize = 64 * 1024 + 32 * 1024;

fuzz_target!(|input: &[u8]| {
    let Input { options, mut rng, data } = Input::new(input);
    let mut config = Config::for_tests();
    if options & 1 == 1 {
        config.max_target = 64;
        config.max_head = 256;
        config.max_headers = 8;
        config.max_body = 512;
    }
    let limits = config.limits();
    let state = Arc::new(Mutex::new(State::default()));
    let deferring = options & 2 == 2;
    let app: Arc<dyn App> = if deferring {
        Arc::new(Deferring { state: Arc::clone(&state), limits: limits.clone() })
    } else {
        Arc::new(Hello)
    };
    let site = Site::new(config, app).expect("a quiet site needs no file");

    let whole = run(&site, &state, [data], usize::MAX, &mut Rng::new(rng.bits()));
    let cuts = rng.cuts(data.len());
    let write_max = match rng.below(3) {
        0 => usize::MAX,
        1 => 1 + rng.below(64),
        _ => 64 + rng.below(5000),
    };
    let split = run(&site, &state, flash_fuzz::pieces(data, &cuts), write_max, &mut rng);
    assert!(
        whole.outcome == split.outcome,
        "cutting the input at {cuts:?} (writes of at most {write_max}) changed the outcome\ninput: {}\nwhole: {}\nsplit: {}",
        show(data),
        whole.outcome,
        split.outcome
    );

    let input_bound = 2 * (limits.max_head + limits.max_body as usize + DECODER_LINES).min(data.len() + 4096);
    for (name, r) in [("whole", &whole), ("split", &split)] {
        assert!(r.peak_input <= input_bound, "{name}: the input buffer grew to {} bytes", r.peak_input);
        assert!(r.peak_output <= 2 * OUTPUT_BOUND, "{name}: the output buffer grew to {} bytes", r.peak_output);
    }
});

/// Drives a fresh connection with `pieces`, sending the deferred answers as `rng` decides, then
/// checks that every request the application saw was answered, in order.
fn run<'a>(
    site: &Site,
    state: &Arc<Mutex<State>>,
    pieces: impl IntoIterator<Item = &'a [u8]>,
    write_max: usize,
    rng: &mut Rng,
) -> Run {
    *lock(state) = State::default();
    let mut release = |stuck: bool| {
        let mut s = lock(state);
        if s.held.is_empty() || !(stuck || rng.one_in(4)) {
            return false;
        }
        let at = rng.below(s.held.len());
        let (responder, response) = s.held.swap_remove(at);
        drop(s);
        responder.send(response);
        true
    };
    let run = drive(site, pieces, write_max, &mut release);
    let s = lock(state);
    assert!(s.held.is_empty(), "{} deferred answers never sent", s.held.len());
    let out = [&run.outcome.out[..], &run.outcome.out_after_eof].concat();
    let seqs: Vec<u64> = out
        .split(|&c| c == b'\n')
        .filter_map(|line| line.strip_prefix(b"X-Seq: "))
        .map(|n| String::from_utf8_lossy(n).trim().parse().expect("a sequence number"))
        .collect();
    let expected: Vec<u64> = (0..s.calls).collect();
    if !seqs.is_empty() || s.calls > 0 {
        assert_eq!(seqs, expected, "answers out of order or missing\noutput: {}", show(&out));
    }
    run
}

/// What [`Deferring`] keeps between calls.
#[derive(Default)]
struct State {
    /// How many requests the application has been handed.
    calls: u64,
    /// Deferred answers not yet sent: the responder and what it will send.
    held: Vec<(Responder, Response)>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Answers every request with its sequence number and a summary of what it was handed (method,
/// lengths, a fingerprint of the body), which the comparison of two runs then checks as well;
/// defers the requests whose target has an even fingerprint.
struct Deferring {
    /// Shared with the driver's `release`.
    state: Arc<Mutex<State>>,
    /// The limits the connection must have enforced before calling.
    limits: Limits,
}

impl App for Deferring {
    fn call(&self, req: &Request<'_>) -> Reply {
        let (target, body) = (req.target(), req.body());
        assert!(target.len() <= self.limits.max_target, "handed a target of {} bytes", target.len());
        assert!(body.len() as u64 <= self.limits.max_body, "handed a body of {} bytes", body.len());
        let fields = req.headers().count();
        assert!(fields <= self.limits.max_headers, "handed {fields} fields");
        let mut s = lock(&self.state);
        let summary = format!("{}/{}/{fields}/{}/{:x}", req.method(), target.len(), body.len(), fingerprint(body));
        let response =
            Response::text(200, "answered").with_header("X-Seq", s.calls.to_string()).with_header("X-Req", summary);
        s.calls += 1;
        if fingerprint(target.as_bytes()) % 2 == 1 {
            return Reply::Now(response);
        }
        let (responder, pending) = deferred();
        s.held.push((responder, response));
        assert!(s.held.len() <= MAX_OWED, "{} answers owed at once", s.held.len());
        Reply::Later(pending)
    }
}
