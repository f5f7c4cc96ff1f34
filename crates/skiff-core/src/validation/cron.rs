//! Cron schedule validation: the parser is [`crate::cron`] (robfig/cron's `ParseStandard`),
//! whose error messages upstream returns verbatim as the field error detail.

/// Parses a standard cron spec; the error is robfig/cron's message.
pub(crate) fn parse_standard(spec: &str) -> Result<(), String> {
    crate::cron::Schedule::parse(spec)
        .map(|_| ())
        .map_err(|e| e.0)
}

#[cfg(test)]
mod tests {
    use super::parse_standard;

    #[test]
    fn accepts_standard_specs() {
        for s in [
            "*/5 * * * *",
            "0 0 * * 0",
            "0 9-17 * jan-mar mon-fri",
            "15,45 */2 1 * ?",
            "@hourly",
            "@every 1h30m",
            "TZ=UTC 0 * * * *",
            "5/15 * * * *",
        ] {
            assert_eq!(parse_standard(s), Ok(()), "{s}");
        }
    }

    #[test]
    fn rejects_with_robfig_messages() {
        assert_eq!(
            parse_standard("foo").unwrap_err(),
            "expected exactly 5 fields, found 1: [foo]"
        );
        assert_eq!(
            parse_standard("61 * * * *").unwrap_err(),
            "end of range (61) above maximum (59): 61"
        );
        assert_eq!(
            parse_standard("* * 0 * *").unwrap_err(),
            "beginning of range (0) below minimum (1): 0"
        );
        assert_eq!(
            parse_standard("x * * * *").unwrap_err(),
            "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            parse_standard("@often").unwrap_err(),
            "unrecognized descriptor: @often"
        );
        assert_eq!(
            parse_standard("*/0 * * * *").unwrap_err(),
            "step of range should be a positive number: */0"
        );
        assert_eq!(
            parse_standard("1-2-3 * * * *").unwrap_err(),
            "too many hyphens: 1-2-3"
        );
    }
}
