//! The stats job service through server 04, an event loop: the assignment's 114 cases replayed
//! as its checker replays them, and the job lifecycle over HTTP, including a `kill -9` of the
//! real binary. The checks are `flash_conformance::stats`'s, the same for every server: the job
//! pool belongs to the application, so every connection model must pass them.

flash_conformance::stats_suite!(flash_04_epoll::serve, env!("CARGO_BIN_EXE_flash-04-epoll"));
