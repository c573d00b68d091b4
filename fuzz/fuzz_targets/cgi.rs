//! Fuzzes server 02's reading of a CGI program's output
//! (`flash_02_fork_exec_cgi::cgi::parse_output`): the header block a script writes, which the
//! server turns into the head of its own response.
//!
//! Options bit 0 reads the data as a non-parsed-header script's output (status line first).
//! The parser must never panic, and what it lets through must not reach the client as anything
//! but what it says: every field name a token, no control byte in a value (a CR or LF there
//! would let a script write lines of its own into the response head), a status from 200 to 599,
//! a local redirect to a path. The response is then encoded as the connection would, and that
//! head must parse back, as a client would read it, into the same status and at least every
//! field the script gave.

#![no_main]

use flash_02_fork_exec_cgi::cgi::{parse_output, Answer};
use flash_common::response::encode_head;
use flash_fuzz::{is_ctl, is_tchar, Input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Input { options, data, .. } = Input::new(input);
    let nph = options & 1 == 1;
    let res = match parse_output(data.to_vec(), nph) {
        Ok(Answer::Response(res)) => res,
        Ok(Answer::LocalRedirect(target)) => {
            assert!(!nph, "an nph script's Location is passed on, not followed");
            assert!(target.starts_with('/') && !target.bytes().any(is_ctl), "redirected to {target:?}");
            return;
        }
        Err(reason) => {
            assert!(!reason.is_empty(), "a refusal without a reason");
            return;
        }
    };
    assert!((200..=599).contains(&res.status), "status {}", res.status);
    assert_eq!(res.close, nph, "an nph response closes the connection, and only it");
    for (name, value) in &res.headers {
        assert!(!name.is_empty() && name.bytes().all(is_tchar), "field name {name:?}");
        assert!(!value.bytes().any(is_ctl), "a control byte in {name}: {value:?}");
    }
    if let Some(ct) = &res.content_type {
        assert!(!ct.bytes().any(is_ctl), "a control byte in Content-Type: {ct:?}");
    }

    let mut head = Vec::new();
    encode_head(&mut head, &res, b"Thu, 01 Jan 1970 00:00:00 GMT", 1, true);
    let mut fields = vec![httparse::EMPTY_HEADER; res.headers.len() + 8];
    let mut parsed = httparse::Response::new(&mut fields);
    match parsed.parse(&head) {
        Ok(httparse::Status::Complete(len)) => assert_eq!(len, head.len(), "the head ends early"),
        other => panic!("the encoded head does not parse: {other:?}\n{}", String::from_utf8_lossy(&head)),
    }
    assert_eq!(parsed.code, Some(res.status));
    for (name, value) in &res.headers {
        let found = parsed.headers.iter().any(|h| h.name == name && h.value == value.as_bytes());
        assert!(found, "{name}: {value:?} did not come through");
    }
});
