//! The shared conformance corpus, run against this server.

flash_conformance::suite!(flash_04_epoll::serve);
