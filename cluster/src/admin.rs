//! The admin interface, on its own port (`--admin-port`, loopback unless `--admin-addr` says
//! otherwise): `GET /status`, `POST /size`, and a page at `/` that shows the status live.
//!
//! It is a Flash application like any other, served by server 04's loop on a thread of its own,
//! apart from the traffic it watches: a cluster so busy that its queue is full still answers its
//! operator. It holds no state: every answer comes from the supervisor, which owns the copies,
//! through a deferred reply ([`Reply::Later`]), so the admin loop never waits on it either.

use std::sync::mpsc;
use std::time::Duration;

use flash_common::config::parse_duration;
use flash_common::{deferred, App, Body, Reply, Request, Response};
use serde_json::Value;

use crate::policy::AutoPolicy;
use crate::supervisor::{Event, SizeRequest};

/// The live status page.
const PAGE: &str = include_str!("status.html");

/// The admin application.
pub struct Admin {
    /// The supervisor's channel.
    events: mpsc::Sender<Event>,
    /// The auto policy's knobs from the command line: what `{"auto": {}}` fills missing ones with.
    defaults: AutoPolicy,
}

impl Admin {
    /// An admin interface for the supervisor behind `events`.
    pub fn new(events: mpsc::Sender<Event>, defaults: AutoPolicy) -> Admin {
        Admin { events, defaults }
    }

    /// Hands an event that carries a responder to the supervisor, and waits for it without
    /// blocking the loop.
    fn ask(&self, event: impl FnOnce(flash_common::Responder) -> Event) -> Reply {
        let (responder, pending) = deferred();
        // If the supervisor is gone, the event (and its responder) is dropped, which answers 500.
        let _ = self.events.send(event(responder));
        Reply::Later(pending)
    }
}

impl App for Admin {
    fn call(&self, req: &Request<'_>) -> Reply {
        let get = matches!(req.method(), "GET" | "HEAD");
        match req.path() {
            "/" if get => {
                Reply::Now(Response::new(200).with_body("text/html; charset=utf-8", Body::Static(PAGE.as_bytes())))
            }
            "/status" if get => self.ask(Event::Status),
            "/size" if req.method() == "POST" => match parse_size(req.body(), &self.defaults) {
                Ok(size) => self.ask(|responder| Event::Resize(size, responder)),
                Err(why) => Reply::Now(Response::error(400, &why)),
            },
            "/" | "/status" => Reply::Now(not_allowed("GET, HEAD")),
            "/size" => Reply::Now(not_allowed("POST")),
            _ => Reply::Now(Response::error(404, "the admin interface has /, /status and /size")),
        }
    }
}

fn not_allowed(allow: &'static str) -> Response {
    Response::error(405, &format!("this resource allows {allow}")).with_header("Allow", allow)
}

/// Reads `{"size": N}` or `{"auto": {"min": .., "max": .., "scale_up_queue": .., "scale_down_idle": ..,
/// "interval": "10s"}}` (missing knobs keep the command line's values).
fn parse_size(body: &[u8], defaults: &AutoPolicy) -> Result<SizeRequest, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    if let Some(size) = v.get("size") {
        let n = size.as_u64().ok_or_else(|| format!("\"size\" must be a whole number, not {size}"))?;
        return Ok(SizeRequest::Fixed(n as usize));
    }
    let Some(auto) = v.get("auto") else {
        return Err(r#"expected {"size": N} or {"auto": {...}}"#.into());
    };
    let auto = auto.as_object().ok_or(r#""auto" must be an object"#)?;
    let number = |name: &str, default: u64| -> Result<u64, String> {
        match auto.get(name) {
            None => Ok(default),
            Some(v) => v.as_u64().ok_or_else(|| format!("\"{name}\" must be a whole number, not {v}")),
        }
    };
    let interval = match auto.get("interval") {
        None => defaults.interval,
        Some(Value::String(s)) => parse_duration(s).map_err(|e| format!("\"interval\": {e}"))?,
        Some(v) => {
            Duration::try_from_secs_f64(v.as_f64().ok_or("\"interval\" must be like \"10s\" or a number of seconds")?)
                .map_err(|e| format!("\"interval\": {e}"))?
        }
    };
    Ok(SizeRequest::Auto(AutoPolicy {
        min: number("min", defaults.min as u64)? as usize,
        max: number("max", defaults.max as u64)? as usize,
        scale_up_queue: number("scale_up_queue", defaults.scale_up_queue as u64)? as usize,
        scale_down_idle: number("scale_down_idle", u64::from(defaults.scale_down_idle))?.min(u64::from(u32::MAX))
            as u32,
        interval,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_bodies() {
        let d = AutoPolicy { min: 1, max: 5, scale_up_queue: 8, scale_down_idle: 2, interval: Duration::from_secs(10) };
        assert_eq!(parse_size(br#"{"size": 3}"#, &d), Ok(SizeRequest::Fixed(3)));
        let auto = parse_size(br#"{"auto": {"max": 4, "interval": "500ms"}}"#, &d).unwrap();
        let want = AutoPolicy { max: 4, interval: Duration::from_millis(500), ..d.clone() };
        assert_eq!(auto, SizeRequest::Auto(want));
        for bad in [
            &br#"{"size": -1}"#[..],
            br#"{"size": "x"}"#,
            b"{",
            br#"{}"#,
            br#"{"auto": 1}"#,
            br#"{"auto": {"min": "a"}}"#,
        ] {
            assert!(parse_size(bad, &d).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
