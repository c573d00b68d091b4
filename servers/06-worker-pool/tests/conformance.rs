//! The shared conformance corpus, run against this server.

flash_conformance::suite!(flash_06_worker_pool::serve);
