//! The shared conformance corpus, run against this server.

flash_conformance::suite!(flash_03_thread_per_request::serve);
