//! The shared conformance corpus, run against this server.

flash_conformance::suite!(flash_02_fork_exec_cgi::serve, unsupported: {
    graceful_shutdown_finishes_in_flight: "the case sees a request in flight through Site::call, and 02 runs the \
        application in a child process instead; tests/cgi.rs checks graceful shutdown with a script in flight"
        => "answered (200) without reaching the application's call",
});
