//! The shared conformance corpus, run against this server (skipped, with the reason, where this
//! machine forbids io_uring).

flash_conformance::suite!(flash_08_io_uring::serve, requires: flash_08_io_uring::available);
