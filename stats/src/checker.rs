//! What every test of the stats service holds it to, written once: the original checker's notion
//! of a right answer, the assignment's 114 cases, and the kinds of bad input and invalid job ids
//! the service must refuse. The service's own tests use them through `Service::handle`, the conformance crate
//! over sockets through every server, so that there is one definition of "within 0.01", one
//! reader of the case files and one table of bad inputs.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// The checker's comparison (DeepDiff with `math_epsilon=0.01`), plus the order of keys: the
/// same keys in the same order, the same shapes, numbers within 0.01. Returns the first
/// difference found, named by its place under `at`.
///
/// Order matters because the answers are listings (`states_mean` ascending, `best5`, `worst5`,
/// `diff_from_mean`): a listing sorted by name has the right keys and values and is still
/// wrong. The one freedom is a tie: keys next to each other whose expected values are exactly
/// equal may come in either order among themselves, since no order of equal means is more
/// right than another (the expected outputs themselves follow none). The order is read from
/// the JSON text as written, which `serde_json` keeps with its `preserve_order` feature (the
/// workspace enables it; without it both sides would come sorted and never differ).
pub fn compare(actual: &Value, expected: &Value, at: &str) -> Result<(), String> {
    match (actual, expected) {
        (Value::Number(a), Value::Number(e)) => {
            let (a, e) = (a.as_f64().unwrap_or(f64::NAN), e.as_f64().unwrap_or(f64::NAN));
            // Written so that a NaN fails: it is within no distance of anything.
            if (a - e).abs() <= 0.01 {
                Ok(())
            } else {
                Err(format!("{at}: {a} != {e}"))
            }
        }
        (Value::Object(a), Value::Object(e)) => {
            if let Some(k) = e.keys().find(|k| !a.contains_key(*k)) {
                return Err(format!("{at}: missing key {k:?}"));
            }
            if let Some(k) = a.keys().find(|k| !e.contains_key(*k)) {
                return Err(format!("{at}: unexpected key {k:?}"));
            }
            compare_order(a, e, at)?;
            e.iter().try_for_each(|(k, v)| compare(&a[k], v, &format!("{at}[{k:?}]")))
        }
        (Value::Array(a), Value::Array(e)) if a.len() == e.len() => {
            a.iter().zip(e).enumerate().try_for_each(|(i, (a, e))| compare(a, e, &format!("{at}[{i}]")))
        }
        (a, e) if a == e => Ok(()),
        (a, e) => Err(format!("{at}: {a} != {e}")),
    }
}

/// Checks that two objects with the same keys list them in the same order, up to ties: each
/// expected key gets the number of its run of consecutive equal values, and the actual keys must
/// walk through the same run numbers.
fn compare_order(actual: &Map<String, Value>, expected: &Map<String, Value>, at: &str) -> Result<(), String> {
    let mut runs = std::collections::HashMap::with_capacity(expected.len());
    let mut previous: Option<&Value> = None;
    let mut run = 0usize;
    for (key, value) in expected {
        if previous.is_some_and(|p| p != value) {
            run += 1;
        }
        previous = Some(value);
        runs.insert(key.as_str(), run);
    }
    for (i, (a, e)) in actual.keys().zip(expected.keys()).enumerate() {
        if runs[a.as_str()] != runs[e.as_str()] {
            return Err(format!("{at}: key {i} is {a:?}, where {e:?} belongs (keys out of order)"));
        }
    }
    Ok(())
}

/// The bundled cases: `<endpoint>/input/in-N.json` and `<endpoint>/output/out-N.json`.
pub fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/tests")
}

/// One original test case.
#[derive(Clone, Debug)]
pub struct Case {
    /// The endpoint it posts to (the name of its folder).
    pub endpoint: String,
    /// Its number, from `in-N.json`.
    pub n: u32,
    /// The request body.
    pub input: Value,
    /// The `data` the finished job must hold.
    pub expected: Value,
}

/// Reads every case under `dir`, endpoints in name order and cases by number. The error names
/// the file that could not be read or parsed.
pub fn read_cases(dir: &Path) -> Result<Vec<Case>, String> {
    let read_json = |path: &Path| -> Result<Value, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    };
    let list = |dir: &Path| -> Result<Vec<String>, String> {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut names = entries
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        names.sort();
        Ok(names)
    };
    let mut cases = Vec::new();
    for endpoint in list(dir)? {
        let inputs = dir.join(&endpoint).join("input");
        let mut numbered = Vec::new();
        for name in list(&inputs)? {
            let n = name
                .strip_prefix("in-")
                .and_then(|s| s.strip_suffix(".json"))
                .and_then(|s| s.parse::<u32>().ok())
                .ok_or_else(|| format!("{}: not an in-N.json case", inputs.join(&name).display()))?;
            numbered.push((n, name));
        }
        numbered.sort();
        for (n, name) in numbered {
            let input = read_json(&inputs.join(name))?;
            let expected = read_json(&dir.join(&endpoint).join("output").join(format!("out-{n}.json")))?;
            cases.push(Case { endpoint: endpoint.clone(), n, input, expected });
        }
    }
    Ok(cases)
}

/// Job ids `get_results` must answer "Invalid job_id" on a service that has no job yet: unknown,
/// zero, not numbers, signed, too large for the counter, percent-encoded junk, empty.
pub const INVALID_JOB_IDS: [&str; 9] = [
    "job_id_1",
    "job_id_999999",
    "job_id_0",
    "job_id_abc",
    "42",
    "job_id_-1",
    "job_id_18446744073709551616",
    "x%20y",
    "",
];

/// One kind of bad input to a job endpoint: it must be answered 400 with a reason containing
/// `reason`, and make no job.
#[derive(Clone, Debug)]
pub struct BadInput {
    /// The endpoint posted to, without `/api/`.
    pub endpoint: &'static str,
    /// The request body.
    pub body: Vec<u8>,
    /// What the 400's reason must say.
    pub reason: &'static str,
}

/// Every kind of bad input the service refuses before a job exists: broken JSON, the wrong
/// JSON, a missing or mistyped field, an unknown question or state.
pub fn bad_inputs() -> Vec<BadInput> {
    let q = crate::QUESTIONS[0].0;
    let json = |value: Value| value.to_string().into_bytes();
    let row = |endpoint, body, reason| BadInput { endpoint, body, reason };
    vec![
        row("states_mean", b"{\"question\": ".to_vec(), "malformed JSON"),
        row("states_mean", b"".to_vec(), "malformed JSON"),
        row("best5", b"\xff\xfe".to_vec(), "malformed JSON"),
        row("states_mean", b"[\"question\"]".to_vec(), "JSON object"),
        row("states_mean", b"{}".to_vec(), "missing field \"question\""),
        row("worst5", b"{}".to_vec(), "missing field \"question\""),
        row("best5", json(serde_json::json!({"question": 7})), "must be a string"),
        row("global_mean", json(serde_json::json!({"question": "Who?"})), "unknown question"),
        row("state_mean", json(serde_json::json!({"question": q})), "missing field \"state\""),
        row("state_diff_from_mean", json(serde_json::json!({"question": q, "state": ["Ohio"]})), "must be a string"),
        row("state_mean_by_category", json(serde_json::json!({"question": q, "state": "Atlantis"})), "unknown state"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_comparison_catches_wrong_values_keys_and_types() {
        let expected = json!({"Ohio": 30.0, "Iowa": {"('Gender', 'Male')": 1.5}});
        assert!(compare(&json!({"Ohio": 30.009, "Iowa": {"('Gender', 'Male')": 1.5}}), &expected, "").is_ok());
        assert!(compare(&json!({"Ohio": 30.02, "Iowa": {"('Gender', 'Male')": 1.5}}), &expected, "").is_err());
        assert!(compare(&json!({"Ohio": 30.0}), &expected, "").is_err());
        assert!(compare(&json!({"Ohio": 30.0, "Iowa": {"('Gender', 'Female')": 1.5}}), &expected, "").is_err());
        assert!(compare(&json!({"Ohio": "30.0", "Iowa": {"('Gender', 'Male')": 1.5}}), &expected, "").is_err());
    }

    /// Parses as an answer arrives, keeping the order of its keys.
    fn parse(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn the_comparison_checks_the_order_of_keys() {
        let expected = parse(r#"{"Utah": 20.0, "Iowa": 25.0, "Ohio": 30.0}"#);
        assert!(compare(&parse(r#"{"Utah": 20.0, "Iowa": 25.0, "Ohio": 30.0}"#), &expected, "").is_ok());
        // The right keys and values, sorted by name: the listing is wrong.
        let err = compare(&parse(r#"{"Iowa": 25.0, "Ohio": 30.0, "Utah": 20.0}"#), &expected, "best5").unwrap_err();
        assert!(err.contains("out of order") && err.starts_with("best5"), "{err}");
        // Nested objects too.
        let nested = parse(r#"{"Ohio": {"a": 1.0, "b": 2.0}}"#);
        assert!(compare(&parse(r#"{"Ohio": {"b": 2.0, "a": 1.0}}"#), &nested, "").is_err());
    }

    #[test]
    fn tied_keys_may_come_in_either_order_and_only_they() {
        let expected = parse(r#"{"Delta": 5.0, "Hawaii": 20.0, "Alabama": 20.0, "Gamma": 20.0, "Iowa": 25.0}"#);
        for tie in ["Alabama, Gamma, Hawaii", "Gamma, Hawaii, Alabama", "Hawaii, Alabama, Gamma"] {
            let middle: Vec<String> = tie.split(", ").map(|s| format!("\"{s}\": 20.0")).collect();
            let actual = parse(&format!(r#"{{"Delta": 5.0, {}, "Iowa": 25.0}}"#, middle.join(", ")));
            assert!(compare(&actual, &expected, "").is_ok(), "{tie}");
        }
        // Within 0.01 is close enough for a value, but not a tie: only exact equality is.
        let close = parse(r#"{"Delta": 5.0, "Iowa": 5.001}"#);
        assert!(compare(&parse(r#"{"Iowa": 5.001, "Delta": 5.0}"#), &close, "").is_err());
        // Equal values that are not next to each other are not a tie.
        let apart = parse(r#"{"A": 1.0, "B": 2.0, "C": 1.0}"#);
        assert!(compare(&parse(r#"{"C": 1.0, "B": 2.0, "A": 1.0}"#), &apart, "").is_err());
    }

    #[test]
    fn the_bundled_cases_are_all_there() {
        let cases = read_cases(&cases_dir()).unwrap();
        assert_eq!(cases.len(), 114);
        let endpoints: std::collections::BTreeSet<&str> = cases.iter().map(|c| c.endpoint.as_str()).collect();
        assert_eq!(endpoints.len(), 9);
        assert!(endpoints.iter().all(|e| crate::Endpoint::from_name(e).is_some()), "{endpoints:?}");
    }

    #[test]
    fn a_case_folder_that_cannot_be_read_is_named() {
        let err = read_cases(Path::new("/no/such/cases")).unwrap_err();
        assert!(err.contains("/no/such/cases"), "{err}");
    }

    #[test]
    fn every_bad_input_names_a_real_endpoint() {
        for bad in bad_inputs() {
            assert!(crate::Endpoint::from_name(bad.endpoint).is_some(), "{bad:?}");
        }
    }
}
