//! Pinned engine versions and images: explicit tags, never `latest`.

/// One supported version of an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineVersion {
    /// What users write: `16`, `7.2`, `3.9`.
    pub version: &'static str,
    /// The pinned container image.
    pub image: &'static str,
}

/// Finds `version` in `versions`, or the newest when `None`; the error lists what is allowed.
pub fn resolve(engine: &str, versions: &'static [EngineVersion], version: Option<&str>) -> Result<&'static EngineVersion, String> {
    match version {
        None => Ok(versions.last().expect("every engine has versions")),
        Some(v) => versions.iter().find(|e| e.version == v).ok_or_else(|| {
            let allowed: Vec<_> = versions.iter().map(|e| e.version).collect();
            format!("{engine} {v:?} is not in FireCamp's catalog; supported versions: {}", allowed.join(", "))
        }),
    }
}

/// Whether a server's reported version (e.g. `15.14`, `7.0.15`, `3.8.0`) is catalog version `v`.
pub fn server_matches(v: &EngineVersion, server_version: &str) -> bool {
    server_version == v.version || server_version.starts_with(&format!("{}.", v.version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_versions_map_to_catalog_versions() {
        let v = EngineVersion { version: "7.0", image: "" };
        assert!(server_matches(&v, "7.0.15"));
        assert!(!server_matches(&v, "7.02"));
        assert!(!server_matches(&v, "7.2.4"));
    }
}
