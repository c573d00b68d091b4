//! The shared conformance corpus, run against this server.

flash_conformance::suite!(flash_07_reactors::serve);
