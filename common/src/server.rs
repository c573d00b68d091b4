//! What every server binary's `main` does, written once: parse the command line, bind, build the
//! application, announce the address, install the signal handlers, and run the server's `serve`.
//!
//! This is the one entry point through which any application plugs into any server:
//! [`main_with`] takes the model (`serve`) and a function that builds the application from the
//! server's flags, its own flags (a clap `Args` struct, flattened into one command line) and the
//! address the server bound. The demo site is `main_with(.., flash_04_epoll::serve, FlashApp::launch)`;
//! the replicated log is the same line with 07's `serve` and its own app. So each server's
//! `src/main.rs` is a few lines, its `src/lib.rs` holds nothing but its model, and no
//! application copies the run loop.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, CommandFactory, FromArgMatches};
use socket2::{Domain, Socket, Type};

use crate::app::App;
use crate::config::{empty_env_is_unset, Config};
use crate::shutdown::Shutdown;
use crate::site::Site;
use crate::status::Status;

/// The signature every server's `serve` has.
pub type Serve = fn(TcpListener, Site, Shutdown) -> io::Result<()>;

/// What an application is built from, once the server has bound its port.
pub struct Setup<'a, F> {
    /// The server's own flags (`--port`, `--threads`, limits, `--docroot`, ...).
    pub config: &'a Config,
    /// The application's flags, parsed from the same command line.
    pub flags: F,
    /// Where the server listens, with port 0 already resolved to the real port.
    pub addr: SocketAddr,
    /// The server's counters, for an application that shows them.
    pub status: Arc<Status>,
}

/// The flags of an application that has none.
#[derive(Args, Clone, Debug, Default)]
pub struct NoFlags {}

/// The server's command line with an application's flags added: `--help` lists both. An empty
/// environment variable counts as unset for all of them ([`crate::config::empty_env_is_unset`]).
pub fn command<F: Args>(name: &'static str, about: &'static str) -> clap::Command {
    empty_env_is_unset(F::augment_args(Config::command())).name(name).bin_name(name).about(about)
}

/// Runs a server binary: the whole of every `main`. `name` and `about` are the binary crate's
/// own (`env!("CARGO_PKG_NAME")`, `env!("CARGO_PKG_DESCRIPTION")`), so `--help` names it;
/// `make_app` builds the application once the port is bound, before the first client.
pub fn main_with<F, A, M>(name: &'static str, about: &'static str, serve: Serve, make_app: M) -> ExitCode
where
    F: Args + FromArgMatches,
    A: App,
    M: FnOnce(Setup<'_, F>) -> io::Result<A>,
{
    let matches = command::<F>(name, about).get_matches();
    let parsed = Config::from_arg_matches(&matches).and_then(|c| Ok((c, F::from_arg_matches(&matches)?)));
    let (config, flags) = match parsed {
        Ok(both) => both,
        Err(e) => e.exit(),
    };
    match run(config, flags, serve, make_app) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            crate::log_line!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run<F, A, M>(config: Config, flags: F, serve: Serve, make_app: M) -> io::Result<()>
where
    A: App,
    M: FnOnce(Setup<'_, F>) -> io::Result<A>,
{
    raise_fd_limit();
    let listener = bind(SocketAddr::new(config.addr, config.port))
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {}:{}: {e}", config.addr, config.port)))?;
    let shutdown = Shutdown::new()?;
    shutdown.install_signals()?;
    let status = Arc::new(Status::new());
    let addr = listener.local_addr()?;
    let app = make_app(Setup { config: &config, flags, addr, status: status.clone() })?;
    let site = Site::with_status(config, Arc::new(app), status)?;
    site.app().warm_up();
    // Tests and tools read this line to learn the port; it must come first and be flushed. If
    // nobody reads stdout any more (`... | head -1` has exited, or the cluster that started this
    // copy has lost its stderr), the line is lost and the server serves all the same.
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "listening on http://{addr}").and_then(|()| out.flush());
    drop(out);
    let served = serve(listener, site.clone(), shutdown);
    // The application finishes its background work even when the server failed.
    site.shutdown_app();
    served
}

/// Binds a listening socket the way servers should: `SO_REUSEADDR` so a restart does not wait
/// for old connections in TIME_WAIT, `SO_REUSEPORT` so that server 07 can open one listener per
/// core on the same port, and a backlog large enough for a burst of clients.
///
/// `SO_REUSEPORT` would also let a second server (a second copy of this one, started by mistake)
/// bind the same port without a word and take part of its clients, so a port given by number is
/// first tried without it: if anything listens there, this is `Address already in use`, as nginx
/// says. (A process that binds the port between the try and the bind slips through; the try
/// catches the usual mistake, a second start.)
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    if addr.port() != 0 {
        let alone = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        alone.set_reuse_address(true)?;
        alone.bind(&addr.into())?;
    }
    bind_shared(addr)
}

/// Binds another listener on the same address as `listener` (which [`bind`] made), sharing its
/// port through `SO_REUSEPORT`: the kernel then spreads new connections over all of them.
pub fn bind_sibling(listener: &TcpListener) -> io::Result<TcpListener> {
    bind_shared(listener.local_addr()?)
}

/// [`bind`] without the check that the port is free: for the listeners a server shares it with.
fn bind_shared(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

/// Decides what a failed `accept` means. Most failures concern one client (it gave up between
/// the wake-up and the accept): `Ok(true)`, accept the next. Running out of file descriptors is
/// waited out briefly, since retrying at once would spin until some connection closes, and
/// answers `Ok(false)`: an event loop must then go back to its other clients (only they can free
/// a descriptor) and come back to the listener later. Anything else is the listener's own failure
/// and is returned.
pub fn accept_failed(e: io::Error) -> io::Result<bool> {
    use io::ErrorKind::*;
    match e.kind() {
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock => Ok(true),
        _ if matches!(e.raw_os_error(), Some(23 | 24)) => {
            // EMFILE/ENFILE: nothing to do but give other connections a moment to close.
            std::thread::sleep(std::time::Duration::from_millis(10));
            Ok(false)
        }
        _ => Err(e),
    }
}

/// Raises the soft limit on open files to the hard limit, as nginx's `worker_rlimit_nofile`
/// does: the default of 1024 is far below the 10,000 connections an event loop can hold.
pub fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        // Failure leaves the old limit, which is still a working server, just a smaller one.
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// Turns a client away with `503 Service Unavailable` and `Retry-After`, without reading its
/// request: the fast refusal a server under load owes a client, instead of letting it wait
/// unseen. The write is best-effort (the client may already be gone).
pub fn refuse(mut stream: std::net::TcpStream, reason: &str) {
    use crate::response::{encode_head, Response};
    let res = Response::error(503, reason).with_header("Retry-After", "1");
    let mut out = Vec::new();
    encode_head(&mut out, &res, &crate::date::http_date_now(), 1, false);
    if let crate::response::Body::Bytes(b) = &res.body {
        out.extend_from_slice(b);
    }
    let _ = stream.set_write_timeout(Some(std::time::Duration::from_secs(1)));
    let _ = stream.write_all(&out);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A second server on a port that one listens on is refused; the server's own siblings are not.
    #[test]
    fn a_taken_port_is_refused_but_siblings_share_it() {
        let first = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = first.local_addr().unwrap();
        let second = bind(addr).expect_err("a second server on the same port");
        assert_eq!(second.kind(), io::ErrorKind::AddrInUse, "{second}");
        let sibling = bind_sibling(&first).unwrap();
        assert_eq!(sibling.local_addr().unwrap(), addr);
        drop((first, sibling));
        // Free again once they are closed.
        bind(addr).unwrap();
    }
}
