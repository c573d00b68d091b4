//! The conformance corpus (being written).
