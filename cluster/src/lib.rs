//! # flash-cluster: N copies of any HTTP server behind one address
//!
//! # Model
//! A supervisor runs N copies of a command (any program that serves HTTP on the port it is given)
//! and keeps them alive; a proxy, which is a Flash application on server 07, hands each request
//! to the copy with the fewest requests outstanding and relays its answer. A copy that dies costs
//! no request that can be safely sent again: the proxy sends it to another copy while the
//! supervisor starts a new one. The size is fixed, set live through an admin port, or decided by a
//! policy that watches the queue.
//!
//! # Layout
//! - [`flags`]: the command line (named after nginx, HAProxy and Envoy's settings);
//! - [`forward`]: what a proxy changes in a request and a response (hop-by-hop fields, `Via`,
//!   `X-Forwarded-For`, `Forwarded`, framing), as pure functions;
//! - [`proxy`]: the back end's event loop: balancing, pools, the queue, timeouts, retries;
//! - [`supervisor`]: processes, health checks, restarts, draining, the size;
//! - [`policy`]: the auto size rule; [`admin`]: `/status`, `/size` and the live page.
//!
//! This file is the application the reactors call ([`ClusterApp`]) and its assembly
//! ([`ClusterApp::launch`]); `main.rs` is `main_with(.., flash_07_reactors::serve, ClusterApp::launch)`.

pub mod admin;
pub mod flags;
pub mod forward;
pub mod policy;
pub mod proxy;
pub mod supervisor;

use std::io;
use std::net::SocketAddr;
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use flash_common::server::{bind, Setup};
use flash_common::{deferred, App, Reply, Request, Response, Shutdown, Site};

use crate::flags::{ClusterFlags, Retry};
use crate::proxy::{Job, Msg, Proxy, Replay, Settings};
use crate::supervisor::{Event, Supervisor};

/// The proxy as an application: every request becomes a [`Job`] for the proxy loop, answered later.
pub struct ClusterApp {
    /// The proxy loop's handle.
    proxy: Proxy,
    /// Where the cluster listens (the `Host` of a request that had none).
    addr: SocketAddr,
    /// `--retry`.
    retry: Retry,
    /// `--request-timeout`.
    request_timeout: Duration,
    /// The threads behind the application, stopped by [`App::shutdown`].
    parts: Mutex<Option<Parts>>,
}

/// What [`ClusterApp::shutdown`] stops, in order.
struct Parts {
    /// Stops the copies, then tells the proxy loop to end.
    supervisor: Supervisor,
    /// The proxy loop's thread.
    proxy: JoinHandle<()>,
    /// The admin server's shutdown and thread, if there is an admin port.
    admin: Option<(Shutdown, JoinHandle<io::Result<()>>)>,
}

impl ClusterApp {
    /// Builds the cluster once the front end has bound its port: starts the proxy loop, the
    /// supervisor and its copies, waits until each copy has passed a health check (or was given
    /// up on), and opens the admin port. The front end prints its address only after this
    /// returns, so whoever waits for that line finds the copies ready.
    pub fn launch(setup: Setup<'_, ClusterFlags>) -> io::Result<ClusterApp> {
        let flags = setup.flags;
        flags.validate().map_err(io::Error::other)?;
        let config = setup.config;
        let settings = Settings {
            max_in_flight: flags.max_in_flight as usize,
            queue: config.queue,
            tries: flags.tries,
            max_fails: flags.max_fails,
            connect_timeout: flags.connect_timeout,
            keepalive_timeout: flags.keepalive_timeout,
            max_head: config.max_head,
            max_body: config.max_body,
        };
        let (events, inbox) = mpsc::channel();
        let notices = Mutex::new(events.clone());
        let (proxy, proxy_thread) = Proxy::start(settings, move |notice| {
            let _ = notices.lock().unwrap_or_else(PoisonError::into_inner).send(Event::Proxy(notice));
        })?;
        let defaults = supervisor::policy_of(&flags);
        let (retry, request_timeout, admin_at) =
            (flags.retry, flags.request_timeout, flags.admin_port.map(|port| SocketAddr::new(flags.admin_addr, port)));
        let supervisor = Supervisor::start(flags, config.queue, proxy.clone(), (events, inbox))?;
        let (ready, started) = mpsc::channel();
        let _ = supervisor.events().send(Event::WhenReady(ready));
        let result = started.recv().unwrap_or_else(|_| Err("the supervisor stopped".into()));
        let admin = match (result, admin_at) {
            (Err(why), _) => Err(io::Error::other(why)),
            (Ok(()), None) => Ok(None),
            (Ok(()), Some(at)) => start_admin(at, config, supervisor.events(), defaults).map(Some),
        };
        let admin = match admin {
            Ok(admin) => admin,
            Err(e) => {
                supervisor.stop();
                let _ = proxy_thread.join();
                return Err(e);
            }
        };
        Ok(ClusterApp {
            proxy,
            addr: setup.addr,
            retry,
            request_timeout,
            parts: Mutex::new(Some(Parts { supervisor, proxy: proxy_thread, admin })),
        })
    }
}

/// Serves the admin interface at `at` with server 04's loop on a thread of its own.
fn start_admin(
    at: SocketAddr,
    config: &flash_common::Config,
    events: mpsc::Sender<Event>,
    defaults: policy::AutoPolicy,
) -> io::Result<(Shutdown, JoinHandle<io::Result<()>>)> {
    let listener =
        bind(at).map_err(|e| io::Error::new(e.kind(), format!("--admin-port: cannot listen on {at}: {e}")))?;
    let addr = listener.local_addr()?;
    let mut config = config.clone();
    config.quiet = true;
    let site = Site::new(config, Arc::new(admin::Admin::new(events, defaults)))?;
    let shutdown = Shutdown::new()?;
    let stop = shutdown.clone();
    let thread = std::thread::Builder::new()
        .name("flash-cluster-admin".into())
        .spawn(move || flash_04_epoll::serve(listener, site, stop))?;
    // On stderr: stdout's first line is the front end's address, which tools read.
    flash_common::log_line!("flash-cluster: admin on http://{addr}");
    Ok((shutdown, thread))
}

impl App for ClusterApp {
    fn call(&self, req: &Request<'_>) -> Reply {
        if req.method() == "CONNECT" {
            return Reply::Now(Response::error(501, "the cluster does not open tunnels (CONNECT)"));
        }
        let replay = match self.retry {
            Retry::All => Replay::Always,
            Retry::None => Replay::Never,
            Retry::Safe if forward::replayable(req) => Replay::Always,
            Retry::Safe => Replay::IfUnsent,
        };
        let (responder, pending) = deferred();
        self.proxy.send(Msg::Request(Job {
            request: forward::encode_request(req, self.addr),
            to_head: req.method() == "HEAD",
            replay,
            responder,
            deadline: Instant::now() + self.request_timeout,
            tries: 0,
            last: None,
        }));
        Reply::Later(pending)
    }

    /// The front end has finished every client (so nothing is in flight): stop the copies, then
    /// the proxy loop and the admin interface.
    fn shutdown(&self) {
        let Some(parts) = self.parts.lock().unwrap_or_else(PoisonError::into_inner).take() else { return };
        parts.supervisor.stop();
        let _ = parts.proxy.join();
        if let Some((shutdown, thread)) = parts.admin {
            shutdown.trigger();
            let _ = thread.join();
        }
    }
}
