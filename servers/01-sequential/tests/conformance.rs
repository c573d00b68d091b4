//! Server 01 against the whole conformance corpus: one test per case, all expected to pass.

flash_conformance::suite!(flash_01_sequential::serve);
