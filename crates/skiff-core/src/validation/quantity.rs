//! Resource quantities, following k8s.io/apimachinery/pkg/api/resource `Quantity`: the
//! `^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$` syntax, binary (`Ki`..`Ei`), decimal SI
//! (`n`..`E`) and exponent (`e3`) suffixes, comparison, and the canonical `String()` form used in
//! validation messages. Values are held exactly as nano-units in an `i128` (values below one nano
//! round up, as upstream's `RoundUp` to scale -9 does); huge values saturate.

use std::cmp::Ordering;
use std::fmt;

/// Upstream's `ErrFormatWrong` message.
pub const FORMAT_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// How the quantity was written, which decides how it prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    DecimalSI,
    BinarySI,
    DecimalExponent,
}

/// A parsed quantity.
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    /// The value times 10^9.
    nanos: i128,
    format: Format,
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}
impl Eq for Quantity {}
impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

const NANO: i128 = 1_000_000_000;
const CAP: i128 = i128::MAX / 4;

/// 10^0 ..= 10^38, every power of ten an `i128` holds.
const POW10: [i128; 39] = {
    let mut t = [1i128; 39];
    let mut i = 1;
    while i < t.len() {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

fn pow10(e: u32) -> i128 {
    POW10.get(e as usize).copied().unwrap_or(CAP)
}

fn sat_mul(a: i128, b: i128) -> i128 {
    a.checked_mul(b).unwrap_or(CAP).min(CAP)
}

impl Quantity {
    /// Parses a quantity string.
    pub fn parse(s: &str) -> Result<Quantity, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'".into());
        }
        let b = s.as_bytes();
        let mut i = 0;
        let mut negative = false;
        if b[0] == b'+' || b[0] == b'-' {
            negative = b[0] == b'-';
            i = 1;
        }
        let num_start = i;
        let mut dots = 0;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
            dots += usize::from(b[i] == b'.');
            i += 1;
        }
        let num = &s[num_start..i];
        let suffix = &s[i..];
        if num.is_empty() || dots > 1 || num == "." {
            return Err(FORMAT_ERROR.into());
        }
        // The suffix must itself fit `[eEinumkKMGTP]*[-+]?[0-9]*`.
        let sb = suffix.as_bytes();
        let mut j = 0;
        while j < sb.len() && b"eEinumkKMGTP".contains(&sb[j]) {
            j += 1;
        }
        if j < sb.len() && (sb[j] == b'+' || sb[j] == b'-') {
            j += 1;
        }
        while j < sb.len() && sb[j].is_ascii_digit() {
            j += 1;
        }
        if j != sb.len() {
            return Err(FORMAT_ERROR.into());
        }
        let (exp2, exp10, format): (u32, i32, Format) = match suffix {
            "" => (0, 0, Format::DecimalSI),
            "Ki" => (10, 0, Format::BinarySI),
            "Mi" => (20, 0, Format::BinarySI),
            "Gi" => (30, 0, Format::BinarySI),
            "Ti" => (40, 0, Format::BinarySI),
            "Pi" => (50, 0, Format::BinarySI),
            "Ei" => (60, 0, Format::BinarySI),
            "n" => (0, -9, Format::DecimalSI),
            "u" => (0, -6, Format::DecimalSI),
            "m" => (0, -3, Format::DecimalSI),
            "k" => (0, 3, Format::DecimalSI),
            "M" => (0, 6, Format::DecimalSI),
            "G" => (0, 9, Format::DecimalSI),
            "T" => (0, 12, Format::DecimalSI),
            "P" => (0, 15, Format::DecimalSI),
            "E" => (0, 18, Format::DecimalSI),
            other => {
                let rest = other
                    .strip_prefix('e')
                    .or_else(|| other.strip_prefix('E'))
                    .ok_or_else(|| "unable to parse quantity's suffix".to_string())?;
                let e: i32 = rest
                    .parse()
                    .map_err(|_| "unable to parse quantity's suffix".to_string())?;
                (0, e, Format::DecimalExponent)
            }
        };
        let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
        // The digits of both parts as one integer; one that overflows i128 saturates. Up to
        // 18 digits fit a u64, which is most quantities and cheaper than i128 steps.
        let mut digits = int_part.bytes().chain(frac_part.bytes());
        let mantissa: i128 = if num.len() <= 19 {
            i128::from(digits.fold(0u64, |m, d| m * 10 + u64::from(d - b'0')))
        } else {
            digits
                .try_fold(0i128, |m, d| {
                    m.checked_mul(10)?.checked_add(i128::from(d - b'0'))
                })
                .unwrap_or(CAP)
        };
        let scale = 9 + exp10 - frac_part.len() as i32;
        let mut nanos = if scale >= 0 {
            sat_mul(mantissa, pow10(scale as u32))
        } else {
            let d = pow10((-scale) as u32);
            if d >= CAP {
                i128::from(mantissa != 0)
            } else {
                (mantissa + d - 1) / d
            }
        };
        nanos = sat_mul(nanos, 1i128 << exp2);
        if negative {
            nanos = -nanos;
        }
        Ok(Quantity { nanos, format })
    }

    /// The value in nano-units.
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    /// True if negative.
    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    /// True if zero.
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    pub fn format(&self) -> Format {
        self.format
    }

    fn write_decimal(f: &mut fmt::Formatter<'_>, abs: i128, exponent: bool) -> fmt::Result {
        if abs == 0 {
            return f.write_str("0");
        }
        // Largest power of 1000 (from 10^18 down to 10^-9) that divides the value exactly.
        let mut e: i32 = 18;
        while e > -9 {
            let d = pow10((e + 9) as u32);
            if abs % d == 0 {
                break;
            }
            e -= 3;
        }
        let m = abs / pow10((e + 9) as u32);
        if exponent {
            if e == 0 {
                write!(f, "{m}")
            } else {
                write!(f, "{m}e{e}")
            }
        } else {
            let suffix = match e {
                -9 => "n",
                -6 => "u",
                -3 => "m",
                0 => "",
                3 => "k",
                6 => "M",
                9 => "G",
                12 => "T",
                15 => "P",
                _ => "E",
            };
            write!(f, "{m}{suffix}")
        }
    }
}

impl fmt::Display for Quantity {
    /// Upstream's canonical form (`CanonicalizeBytes`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos < 0 {
            f.write_str("-")?;
        }
        let abs = self.nanos.abs();
        match self.format {
            Format::BinarySI if abs % NANO == 0 && abs >= 1024 * NANO => {
                let bytes = abs / NANO;
                let suffixes = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
                let mut k = 6;
                while k > 0 && bytes % (1i128 << (10 * k)) != 0 {
                    k -= 1;
                }
                write!(f, "{}{}", bytes >> (10 * k), suffixes[k])
            }
            Format::DecimalExponent => Self::write_decimal(f, abs, true),
            _ => Self::write_decimal(f, abs, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        Quantity::parse(s).unwrap().to_string()
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(canon("500m"), "500m");
        assert_eq!(canon("0.5"), "500m");
        assert_eq!(canon("1000m"), "1");
        assert_eq!(canon("1000"), "1k");
        assert_eq!(canon("1500"), "1500");
        assert_eq!(canon("1024Mi"), "1Gi");
        assert_eq!(canon("1536Mi"), "1536Mi");
        assert_eq!(canon("0.5Ki"), "512");
        assert_eq!(canon("1e3"), "1e3");
        assert_eq!(canon("0"), "0");
        assert_eq!(canon("-2Gi"), "-2Gi");
    }

    #[test]
    fn ordering_and_errors() {
        let a = Quantity::parse("100Mi").unwrap();
        let b = Quantity::parse("1Gi").unwrap();
        assert!(a < b);
        assert_eq!(Quantity::parse("1G").unwrap().nanos(), 1_000_000_000 * NANO);
        assert_eq!(Quantity::parse("1n").unwrap().nanos(), 1);
        assert_eq!(Quantity::parse("0.1n").unwrap().nanos(), 1);
        assert_eq!(Quantity::parse("abc").unwrap_err(), FORMAT_ERROR);
        assert!(Quantity::parse("1Xi").is_err());
        assert!(Quantity::parse("1.2.3").is_err());
        assert!(Quantity::parse("").is_err());
    }

    #[test]
    fn long_mantissas_are_exact_until_they_saturate() {
        // 38 digits fit an i128 exactly; leading zeros count for nothing.
        let digits = "12345678901234567890123456789012345678";
        let q = Quantity::parse(&format!("000{digits}n")).unwrap();
        assert_eq!(q.nanos(), digits.parse::<i128>().unwrap());
        assert_eq!(Quantity::parse("0001.250").unwrap().nanos(), 1_250_000_000);
        assert_eq!(Quantity::parse("00.000n").unwrap().nanos(), 0);
        // Beyond i128 the mantissa saturates, and so does the value.
        let huge = Quantity::parse(&"9".repeat(60)).unwrap();
        assert_eq!(huge.nanos(), CAP);
    }

    /// Mantissas on either side of the widths a u64 holds read the same as their i128 value.
    #[test]
    fn mantissas_around_the_u64_width_are_exact() {
        for len in 16..=22 {
            for fill in ["9", "1", "5"] {
                let digits = fill.repeat(len);
                let want = digits.parse::<i128>().unwrap();
                assert_eq!(
                    Quantity::parse(&format!("{digits}n")).unwrap().nanos(),
                    want
                );
                let (int, frac) = digits.split_at(len - 9);
                let dotted = Quantity::parse(&format!("{int}.{frac}")).unwrap();
                assert_eq!(dotted.nanos(), want, "{int}.{frac}");
            }
        }
    }
}
