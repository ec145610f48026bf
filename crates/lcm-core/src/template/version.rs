use std::fmt;
use std::str::FromStr;

/// A Kubernetes release `vMAJOR.MINOR.PATCH`, ordered by number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KubernetesVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl KubernetesVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }
}

impl FromStr for KubernetesVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s
            .strip_prefix('v')
            .ok_or_else(|| format!("`{s}` must start with `v`, as in v1.26.6"))?;
        let parts: Vec<&str> = digits.split('.').collect();
        let numbers: Option<Vec<u32>> = parts.iter().map(|p| p.parse().ok()).collect();
        match numbers.as_deref() {
            Some(&[major, minor, patch]) => Ok(Self::new(major, minor, patch)),
            _ => Err(format!(
                "`{s}` is not of the form vMAJOR.MINOR.PATCH, as in v1.26.6"
            )),
        }
    }
}

impl fmt::Display for KubernetesVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders() {
        let a: KubernetesVersion = "v1.26.6".parse().expect("valid");
        let b: KubernetesVersion = "v1.27.0".parse().expect("valid");
        assert!(a < b);
        assert_eq!(a.to_string(), "v1.26.6");
    }

    #[test]
    fn rejects_missing_prefix_and_bad_shapes() {
        for bad in ["1.26.6", "v1.26", "v1.26.x", "v1.26.6.1", ""] {
            assert!(bad.parse::<KubernetesVersion>().is_err(), "{bad}");
        }
    }
}
