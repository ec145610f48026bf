//! YAML in and out (serde-saphyr, as kube itself uses).

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use serde_saphyr::{Error, SerializeError};

/// Serializes one value as a YAML document.
pub fn to_string<T: Serialize>(value: &T) -> Result<String, SerializeError> {
    serde_saphyr::to_string(value)
}

/// Parses one YAML document.
pub fn from_str<T: DeserializeOwned>(s: &str) -> Result<T, Error> {
    serde_saphyr::from_str(s)
}

/// Parses a multi-document YAML stream.
pub fn from_multi_str<T: DeserializeOwned>(s: &str) -> Result<Vec<T>, Error> {
    serde_saphyr::from_multiple(s)
}

/// Serializes values as a multi-document YAML stream, each document opened by `---`.
pub fn to_multi_string<T: Serialize>(values: &[T]) -> Result<String, SerializeError> {
    values
        .iter()
        .map(|v| Ok(format!("---\n{}", to_string(v)?)))
        .collect()
}
