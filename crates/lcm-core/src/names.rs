//! Names that must fit where Kubernetes allows less than an object name: a label value holds
//! 63 characters, an object name 253.

/// Longest label value Kubernetes accepts.
const MAX_LABEL_VALUE: usize = 63;

/// `name` as a label value: itself when it fits, else a prefix of it and a hash of the whole
/// (so two long names sharing a prefix still differ). An object's name (a DNS subdomain, up to
/// 253 characters) always becomes a valid label value; the full name is kept where it must be
/// read back (an annotation or an owner reference), never parsed out of the label.
pub fn label_value(name: &str) -> String {
    if name.len() <= MAX_LABEL_VALUE {
        return name.to_string();
    }
    let hash = format!("{:016x}", fnv1a64(name.as_bytes()));
    let room = MAX_LABEL_VALUE - hash.len() - 1;
    // DNS subdomains are ASCII, so byte offsets are character offsets; a label value must
    // end in an alphanumeric before the separator.
    let prefix =
        name[..room.min(name.len())].trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    format!("{prefix}-{hash}")
}

/// FNV-1a (64 bits): a stable hash for names (std's hasher may change between Rust releases).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_kept() {
        assert_eq!(label_value("req-1"), "req-1");
        let exactly = "a".repeat(63);
        assert_eq!(label_value(&exactly), exactly);
    }

    #[test]
    fn long_names_fit_and_stay_distinct() {
        let long = format!("{}.example.org", "x".repeat(240));
        let other = format!("{}.example.com", "x".repeat(240));
        for value in [label_value(&long), label_value(&other)] {
            assert!(value.len() <= 63, "{value}");
            assert!(
                value.starts_with('x')
                    && value
                        .bytes()
                        .last()
                        .is_some_and(|b| b.is_ascii_alphanumeric())
            );
        }
        assert_ne!(label_value(&long), label_value(&other));
        assert_eq!(label_value(&long), label_value(&long));
    }

    #[test]
    fn a_prefix_ending_in_punctuation_is_trimmed() {
        let name = format!("{}.{}", "a".repeat(45), "b".repeat(40));
        let value = label_value(&name);
        assert!(
            value.starts_with(&format!("{}-", "a".repeat(45))),
            "{value}"
        );
    }
}
