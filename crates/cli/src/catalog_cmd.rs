//! `firecamp catalog`: the engines, versions and pinned images FireCamp can run.

use firecamp_catalog::engine;
use firecamp_core::EngineKind;
use serde::Serialize;

use crate::args::Format;
use crate::error::CliError;
use crate::output;

#[derive(Serialize)]
struct Entry {
    engine: &'static str,
    version: &'static str,
    image: &'static str,
    default: bool,
    #[serde(rename = "staticIp")]
    static_ip: bool,
}

pub fn run(format: Format) -> Result<(), CliError> {
    let entries: Vec<Entry> = EngineKind::ALL
        .iter()
        .flat_map(|k| {
            let e = engine(*k);
            let versions = e.versions();
            versions.iter().map(move |v| Entry {
                engine: k.as_str(),
                version: v.version,
                image: v.image,
                default: std::ptr::eq(v, versions.last().unwrap_or(v)),
                static_ip: e.needs_static_ip(),
            })
        })
        .collect();
    let text = match format {
        Format::Json => output::json(&entries)? + "\n",
        Format::Yaml => output::yaml(&entries)?,
        Format::Table => output::table(
            &["ENGINE", "VERSION", "IMAGE", "DEFAULT", "STATIC IP"],
            &entries.iter().map(|e| vec![e.engine.into(), e.version.into(), e.image.into(), yes(e.default), yes(e.static_ip)]).collect::<Vec<_>>(),
        ),
    };
    print!("{text}");
    Ok(())
}

fn yes(b: bool) -> String {
    if b { "yes" } else { "" }.into()
}
