//! `KEY=VALUE` flags: labels, annotations, engine parameters, static IPs and engine options.

use std::collections::BTreeMap;

use firecamp_core::EngineKind;
use serde_json::{Map, Value};

use crate::error::CliError;

/// Splits `KEY=VALUE` flags into a map; the error names the flag.
pub fn pairs(flag: &str, items: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    items
        .iter()
        .map(|i| match i.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(CliError::Usage(format!("--{flag} {i:?}: write it as KEY=VALUE"))),
        })
        .collect()
}

/// Splits `MEMBER:KEY=VALUE` flags into parameters per member; the error names the flag.
pub fn member_pairs(flag: &str, items: &[String]) -> Result<BTreeMap<String, BTreeMap<String, String>>, CliError> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for i in items {
        let Some((member, kv)) = i.split_once(':') else {
            return Err(CliError::Usage(format!("--{flag} {i:?}: write it as MEMBER:KEY=VALUE")));
        };
        let (k, v) = pairs(flag, &[kv.to_string()])?.into_iter().next().expect("one pair");
        out.entry(member.to_string()).or_default().insert(k, v);
    }
    Ok(out)
}

/// `max-connections` → `maxConnections`, the spelling of the spec.
fn camel(key: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in key.chars() {
        if c == '-' || c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Engine options as the JSON of the engine's option block, or `None` when there are none.
/// Numbers and booleans are typed; the spec's own rules check the values.
pub fn engine_options(items: &[String]) -> Result<Option<Value>, CliError> {
    let pairs = pairs("option", items)?;
    if pairs.is_empty() {
        return Ok(None);
    }
    let mut map = Map::new();
    for (k, v) in pairs {
        let value = if let Ok(n) = v.parse::<u64>() {
            Value::from(n)
        } else if let Ok(b) = v.parse::<bool>() {
            Value::from(b)
        } else {
            Value::from(v)
        };
        map.insert(camel(&k), value);
    }
    Ok(Some(Value::Object(map)))
}

/// Turns serde's "unknown field `x`, expected one of …" into a message about `--option`.
pub fn option_error(engine: EngineKind, e: serde_json::Error) -> CliError {
    CliError::Usage(format!("--option for {engine}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kebab_keys_become_camel_case() {
        assert_eq!(camel("max-connections"), "maxConnections");
        assert_eq!(camel("maxmemory-policy"), "maxmemoryPolicy");
        assert_eq!(camel("mode"), "mode");
    }

    #[test]
    fn pairs_need_an_equals_sign() {
        let err = pairs("label", &["team".into()]).unwrap_err();
        assert!(err.to_string().contains("--label \"team\": write it as KEY=VALUE"));
    }
}
