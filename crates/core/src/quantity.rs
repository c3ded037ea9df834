//! Kubernetes resource quantities (`500m`, `2`, `512Mi`, `10Gi`), parsed only to validate them and
//! to derive engine settings (buffer sizes, heaps) from memory limits.

/// A quantity in thousandths of its base unit (millicores for CPU, millibytes for memory) so
/// that `100m` CPU and `1.5Gi` are both exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity(u128);

impl Quantity {
    pub fn from_units(units: u128) -> Self {
        Quantity(units * 1000)
    }
    pub fn millis(self) -> u128 {
        self.0
    }
    /// Whole base units, rounded down (bytes for memory).
    pub fn units(self) -> u128 {
        self.0 / 1000
    }
    pub fn mebibytes(self) -> u128 {
        self.units() / (1 << 20)
    }
}

const SUFFIXES: &[(&str, u128, u128)] = &[
    // (suffix, multiplier numerator, divisor) applied to the value in millis
    ("Ki", 1 << 10, 1),
    ("Mi", 1 << 20, 1),
    ("Gi", 1 << 30, 1),
    ("Ti", 1 << 40, 1),
    ("Pi", 1 << 50, 1),
    ("Ei", 1 << 60, 1),
    ("m", 1, 1000),
    ("k", 1_000, 1),
    ("M", 1_000_000, 1),
    ("G", 1_000_000_000, 1),
    ("T", 1_000_000_000_000, 1),
    ("P", 1_000_000_000_000_000, 1),
    ("E", 1_000_000_000_000_000_000, 1),
];

/// Parses a quantity; the error says what the syntax is.
pub fn parse(s: &str) -> Result<Quantity, String> {
    let bad = || format!("{s:?} is not a quantity; use a number with an optional suffix, e.g. 500m, 2, 512Mi, 10Gi");
    let s = s.trim();
    let (number, mul, div) = SUFFIXES.iter().find_map(|(suf, mul, div)| s.strip_suffix(suf).map(|n| (n, *mul, *div))).unwrap_or((s, 1, 1));
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() && frac.is_empty() || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    if frac.len() > 3 {
        return Err(format!("{s:?} has more than three decimal places"));
    }
    let int: u128 = if int.is_empty() { 0 } else { int.parse().map_err(|_| bad())? };
    let frac_millis: u128 = if frac.is_empty() { 0 } else { format!("{frac:0<3}").parse().map_err(|_| bad())? };
    let millis =
        int.checked_mul(1000).and_then(|m| m.checked_add(frac_millis)).and_then(|m| m.checked_mul(mul)).ok_or_else(|| format!("{s:?} is too large"))?;
    if millis % div != 0 {
        return Err(format!("{s:?} is finer than one thousandth of a unit"));
    }
    Ok(Quantity(millis / div))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_and_memory() {
        assert_eq!(parse("500m").unwrap().millis(), 500);
        assert_eq!(parse("2").unwrap().millis(), 2000);
        assert_eq!(parse("1.5").unwrap().millis(), 1500);
        assert_eq!(parse("512Mi").unwrap().units(), 512 << 20);
        assert_eq!(parse("10Gi").unwrap().mebibytes(), 10 * 1024);
        assert_eq!(parse("1G").unwrap().units(), 1_000_000_000);
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "abc", "1.2.3", "-1", "10GB", "1.0001"] {
            assert!(parse(s).is_err(), "{s} should be rejected");
        }
        assert!(parse("10GB").unwrap_err().contains("512Mi"));
    }
}
