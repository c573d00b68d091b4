//! The shared conformance corpus, run against this server.

flash_conformance::suite!(flash_05_threaded_epoll::serve);
