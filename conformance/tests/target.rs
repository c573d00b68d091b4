//! Every case that needs no special configuration, against the server at
//! `FLASH_TARGET=http://127.0.0.1:PORT` if that is set (to hold Flash against nginx or a peer
//! with the same cases), and otherwise against server 01 in-process, so that this file always
//! asserts something.

flash_conformance::target_suite!(flash_01_sequential::serve);
