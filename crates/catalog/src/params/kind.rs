//! The types of engine parameters and how each engine spells their values. A value is accepted
//! only when it parses as the type and lies in the range, so nothing but a number, a unit or a
//! listed word ever reaches an engine's config file.

/// PostgreSQL's `INT_MAX`, the upper bound of most of its integer parameters.
pub const INT_MAX: i64 = 2_147_483_647;

/// What a parameter's value must be. Ranges of PostgreSQL amounts are in the parameter's base
/// unit (`base`: bytes or microseconds per unit), as `pg_settings` lists them.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A whole number.
    Int { min: i64, max: i64 },
    /// A decimal number.
    Real { min: f64, max: f64 },
    /// One of these words, exactly (booleans are spelled the engine's way).
    OneOf(&'static [&'static str]),
    /// PostgreSQL memory: a number with a unit `B kB MB GB TB` (case-sensitive); no unit means
    /// `base` bytes; a negative number (a "use the default" value) takes no unit.
    PgMemory { base: u64, min: i64, max: i64 },
    /// PostgreSQL time: a number with a unit `us ms s min h d`; no unit means `base` µs.
    PgTime { base: u64, min: i64, max: i64 },
    /// Redis memory: a whole number of bytes, or with a unit `k kb m mb g gb` (any case).
    RedisMemory { max: u64 },
    /// Redis `save`: pairs `<seconds> <changes>`, or `""` for no snapshots.
    RedisSave,
    /// Only these characters, at most `max_len` of them.
    Chars { set: &'static str, max_len: usize },
}

/// One parameter a service may set.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub key: &'static str,
    pub kind: Kind,
    /// Literal values accepted besides the type (Redis's `""` for "none").
    pub also: &'static [&'static str],
}

pub const fn p(key: &'static str, kind: Kind) -> Param {
    Param { key, kind, also: &[] }
}

impl Param {
    pub const fn or(self, also: &'static [&'static str]) -> Param {
        Param { key: self.key, kind: self.kind, also }
    }

    /// `Err` says what the value must be.
    pub fn check(&self, value: &str) -> Result<(), String> {
        if self.also.contains(&value) || self.kind.accepts(value) { Ok(()) } else { Err(self.describe()) }
    }

    /// What the parameter takes, for messages and the docs.
    pub fn describe(&self) -> String {
        let d = self.kind.describe();
        match self.also {
            [] => d,
            also => format!("{d}, or {}", also.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")),
        }
    }
}

const PG_MEMORY: &[(&str, u64)] = &[("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10), ("B", 1)];
const PG_TIME: &[(&str, u64)] = &[("d", 86_400_000_000), ("h", 3_600_000_000), ("min", 60_000_000), ("s", 1_000_000), ("ms", 1_000), ("us", 1)];
const REDIS_MEMORY: &[(&str, u64)] = &[("gb", 1 << 30), ("g", 1_000_000_000), ("mb", 1 << 20), ("m", 1_000_000), ("kb", 1 << 10), ("k", 1_000), ("b", 1)];

impl Kind {
    pub fn accepts(&self, v: &str) -> bool {
        match *self {
            Kind::Int { min, max } => integer(v).is_some_and(|n| (min..=max).contains(&n)),
            Kind::Real { min, max } => decimal(v).is_some_and(|n| (min..=max).contains(&n)),
            Kind::OneOf(words) => words.contains(&v),
            Kind::PgMemory { base, min, max } => pg_amount(v, PG_MEMORY, base, min, max),
            Kind::PgTime { base, min, max } => pg_amount(v, PG_TIME, base, min, max),
            Kind::RedisMemory { max } => redis_memory(v).is_some_and(|n| n <= max),
            Kind::RedisSave => redis_save(v),
            Kind::Chars { set, max_len } => !v.is_empty() && v.len() <= max_len && v.chars().all(|c| set.contains(c)),
        }
    }

    pub fn describe(&self) -> String {
        match *self {
            Kind::Int { min, max } => format!("an integer from {min} to {max}"),
            Kind::Real { min, max } => format!("a number from {min} to {max}"),
            Kind::OneOf(words) => format!("one of {}", words.iter().map(|w| format!("`{w}`")).collect::<Vec<_>>().join(", ")),
            Kind::PgMemory { base, min, max } => {
                format!("memory with a unit B, kB, MB, GB or TB (no unit: {}), {}", show(base, PG_MEMORY), range(base, min, max, PG_MEMORY))
            }
            Kind::PgTime { base, min, max } => {
                format!("a time with a unit us, ms, s, min, h or d (no unit: {}), {}", show(base, PG_TIME), range(base, min, max, PG_TIME))
            }
            Kind::RedisMemory { max } => format!("bytes, or with a unit k, kb, m, mb, g or gb, up to {}", show(max, REDIS_MEMORY)),
            Kind::RedisSave => "pairs `<seconds> <changes>` separated by spaces, e.g. `3600 1 300 100`".into(),
            Kind::Chars { set, max_len } => format!("1 to {max_len} of the characters `{set}`"),
        }
    }
}

/// `min` to `max` base units, in the largest exact unit; a negative minimum is a special value.
fn range(base: u64, min: i64, max: i64, units: &[(&str, u64)]) -> String {
    let to = |n: i64| show(n as u64 * base, units);
    if min < 0 { format!("{min} (no unit) to {}", to(max)) } else { format!("{} to {}", to(min), to(max)) }
}

/// `n` in the largest unit that divides it exactly (`8192` bytes → `8kB`).
fn show(n: u64, units: &[(&str, u64)]) -> String {
    match units.iter().find(|(_, f)| n.is_multiple_of(*f)) {
        Some((u, f)) if n > 0 => format!("{}{u}", n / f),
        _ => n.to_string(),
    }
}

/// A whole number in decimal: an optional `-`, then 1 to 18 digits.
fn integer(v: &str) -> Option<i64> {
    let digits = v.strip_prefix('-').unwrap_or(v);
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// A decimal number: digits with an optional fraction (`0.9`, `4`); no exponent, no sign
/// except a leading `-`.
fn decimal(v: &str) -> Option<f64> {
    let body = v.strip_prefix('-').unwrap_or(v);
    let (int, frac) = body.split_once('.').unwrap_or((body, "0"));
    let ok = |s: &str| !s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit());
    if ok(int) && ok(frac) { v.parse().ok() } else { None }
}

/// Splits `8MB` into `8` and `MB` at the first character that is not part of a number.
fn number_and_unit(v: &str) -> (&str, &str) {
    v.split_at(v.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-')).unwrap_or(v.len()))
}

/// A PostgreSQL amount in `[min, max]` base units (PostgreSQL rounds a fraction).
fn pg_amount(v: &str, units: &[(&str, u64)], base: u64, min: i64, max: i64) -> bool {
    let (number, unit) = number_and_unit(v);
    let factor = match unit {
        "" => base,
        u => match units.iter().find(|(name, _)| *name == u) {
            Some((_, f)) => *f,
            None => return false,
        },
    };
    let Some(n) = decimal(number) else { return false };
    if n < 0.0 && !unit.is_empty() {
        return false;
    }
    let in_base = (n * factor as f64 / base as f64).round();
    in_base >= min as f64 && in_base <= max as f64
}

fn redis_memory(v: &str) -> Option<u64> {
    let (number, unit) = number_and_unit(v);
    let factor = match unit.to_ascii_lowercase().as_str() {
        "" => 1,
        u => REDIS_MEMORY.iter().find(|(name, _)| *name == u)?.1,
    };
    if number.is_empty() || number.len() > 15 || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    number.parse::<u64>().ok()?.checked_mul(factor)
}

fn redis_save(v: &str) -> bool {
    let words: Vec<&str> = v.split(' ').collect();
    words.len().is_multiple_of(2) && words.len() <= 20 && words.iter().all(|w| integer(w).is_some_and(|n| n >= 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgresql_amounts() {
        let work_mem = Kind::PgMemory { base: 1024, min: 64, max: INT_MAX };
        for ok in ["8MB", "64kB", "1GB", "65536", "1.5GB"] {
            assert!(work_mem.accepts(ok), "{ok}");
        }
        for bad in ["8mb", "8 MB", "63kB", "MB", "-1", "banana", "1e3", "8MB ", "2048GB", "'8MB'", ".5MB"] {
            assert!(!work_mem.accepts(bad), "{bad}");
        }
        let wal_buffers = Kind::PgMemory { base: 8192, min: -1, max: 262_143 };
        assert!(wal_buffers.accepts("-1") && wal_buffers.accepts("16MB") && !wal_buffers.accepts("-1MB") && !wal_buffers.accepts("4GB"));
        let timeout = Kind::PgTime { base: 1000, min: 0, max: INT_MAX };
        for ok in ["0", "30s", "5min", "250ms", "1h", "1d", "100"] {
            assert!(timeout.accepts(ok), "{ok}");
        }
        for bad in ["-5", "5m", "5 min", "forever", "30S"] {
            assert!(!timeout.accepts(bad), "{bad}");
        }
    }

    #[test]
    fn redis_values() {
        let mem = Kind::RedisMemory { max: 1 << 44 };
        assert!(mem.accepts("0") && mem.accepts("256mb") && mem.accepts("2GB") && mem.accepts("100k"));
        assert!(!mem.accepts("-1") && !mem.accepts("2 gb") && !mem.accepts("2tb") && !mem.accepts("99999999999999gb"));
        assert!(Kind::RedisSave.accepts("3600 1 300 100") && !Kind::RedisSave.accepts("3600") && !Kind::RedisSave.accepts("3600  1"));
    }

    #[test]
    fn descriptions_show_ranges_in_units() {
        assert_eq!(
            Kind::PgMemory { base: 8192, min: 16, max: 1_073_741_823 }.describe(),
            "memory with a unit B, kB, MB, GB or TB (no unit: 8kB), 128kB to 8589934584kB"
        );
        assert_eq!(Kind::PgTime { base: 1_000_000, min: 30, max: 86_400 }.describe(), "a time with a unit us, ms, s, min, h or d (no unit: 1s), 30s to 1d");
        assert_eq!(
            Kind::PgTime { base: 1000, min: -1, max: INT_MAX }.describe(),
            "a time with a unit us, ms, s, min, h or d (no unit: 1ms), -1 (no unit) to 2147483647ms"
        );
        assert!(p("save", Kind::RedisSave).or(&["\"\""]).check("\"\"").is_ok());
    }
}
