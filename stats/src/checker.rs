//! The original checker's notion of a right answer, shared by every test that replays the
//! assignment's cases (through `Service::handle` in this crate, over sockets in the conformance
//! crate), so that there is one definition of "within 0.01".

use serde_json::Value;

/// The checker's comparison (DeepDiff with `math_epsilon=0.01`): the same keys and shapes,
/// numbers within 0.01. Returns the first difference found, named by its place under `at`.
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
            e.iter().try_for_each(|(k, v)| compare(&a[k], v, &format!("{at}[{k:?}]")))
        }
        (Value::Array(a), Value::Array(e)) if a.len() == e.len() => {
            a.iter().zip(e).enumerate().try_for_each(|(i, (a, e))| compare(a, e, &format!("{at}[{i}]")))
        }
        (a, e) if a == e => Ok(()),
        (a, e) => Err(format!("{at}: {a} != {e}")),
    }
}
