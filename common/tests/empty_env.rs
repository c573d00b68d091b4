//! An environment variable that is set but empty (`FLASH_ACCESS_LOG=`, as a shell leaves after
//! `export FLASH_ACCESS_LOG=$UNSET_THING`, or a compose file with a blank entry) means "not set",
//! as curl and most Unix tools read `http_proxy=`: every env-backed flag of the shared command
//! line falls back to its default instead of failing as a flag given without its value.
//!
//! This file holds one test and is its own process: clap reads the environment when the command
//! is built, so the test sets variables, and no other test may be reading the environment then.

use clap::FromArgMatches;
use flash_common::server::{command, NoFlags};
use flash_common::Config;

/// Every variable the shared command line reads.
const ENV: [&str; 6] =
    ["FLASH_ADDR", "PORT", "FLASH_DOCROOT", "TP_NUM_OF_THREADS", "FLASH_ACCESS_LOG", "FLASH_CGI_DIR"];

/// The server's command line parsed with no arguments, as a server binary would see it.
fn parse() -> Result<Config, clap::Error> {
    let matches = command::<NoFlags>("flash-test", "").try_get_matches_from(["flash-test"])?;
    Config::from_arg_matches(&matches)
}

#[test]
fn an_empty_variable_counts_as_unset_and_a_set_one_still_counts() {
    for name in ENV {
        std::env::set_var(name, "");
    }
    let config = parse().unwrap_or_else(|e| panic!("empty variables were taken for flags without a value: {e}"));
    assert_eq!(config.access_log, None);
    assert_eq!((config.port, config.threads, config.docroot, config.cgi_dir), (8080, None, None, None));
    assert_eq!(config.addr.to_string(), "127.0.0.1");

    // Not empty: the variable is the flag's value, as before.
    std::env::set_var("FLASH_ACCESS_LOG", "access.log");
    std::env::set_var("PORT", "9");
    let config = parse().unwrap();
    assert_eq!(config.access_log.as_deref(), Some(std::path::Path::new("access.log")));
    assert_eq!(config.port, 9);
    for name in ENV {
        std::env::remove_var(name);
    }
}
