//! The encryption context and its canonical serialization.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use crate::error::FormatError;
use crate::parse::{Cursor, Stop, put_short_bytes};

/// Keys starting with this prefix are reserved for the SDK itself.
pub const RESERVED_PREFIX: &str = "aws-crypto-";

/// The key under which the default CMM stores the signature verification key.
pub const PUBLIC_KEY_FIELD: &str = "aws-crypto-public-key";

/// The largest serialized encryption context the format can carry.
pub const MAX_SERIALIZED_LEN: usize = u16::MAX as usize;

/// A set of non-secret key-value pairs that are authenticated with a message.
///
/// The encryption context is stored in the clear in the message header (except for required keys,
/// see the required-encryption-context CMM) and bound to it cryptographically, so a message only
/// decrypts with the context it was written with. Keys are kept sorted by their UTF-8 bytes, which is
/// the order the canonical serialization uses.
///
/// ```
/// use envelope_format::EncryptionContext;
///
/// let ec = EncryptionContext::from_iter([("tenant", "acme"), ("purpose", "invoice")]);
/// assert_eq!(ec.get("tenant"), Some("acme"));
/// // Keys iterate in UTF-8 byte order.
/// assert_eq!(ec.keys().collect::<Vec<_>>(), ["purpose", "tenant"]);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct EncryptionContext {
    // `String`'s `Ord` compares UTF-8 bytes, exactly the canonical order.
    pairs: BTreeMap<String, String>,
}

impl EncryptionContext {
    /// An empty encryption context.
    pub const fn new() -> Self {
        Self {
            pairs: BTreeMap::new(),
        }
    }

    /// Add a pair, returning the value it replaced.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Option<String> {
        self.pairs.insert(key.into(), value.into())
    }

    /// Remove a key, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.pairs.remove(key)
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.get(key).map(String::as_str)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.pairs.contains_key(key)
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The pairs in canonical (UTF-8 byte) order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The keys in canonical order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.pairs.keys().map(String::as_str)
    }

    /// The pairs as a map.
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.pairs
    }

    /// The pairs whose keys are in `keys`.
    pub fn restricted_to<'k>(&self, keys: impl IntoIterator<Item = &'k str>) -> Self {
        let mut out = Self::new();
        for key in keys {
            if let Some((k, v)) = self.pairs.get_key_value(key) {
                out.pairs.insert(k.clone(), v.clone());
            }
        }
        out
    }

    /// The pairs whose keys are not in `keys`.
    pub fn without(&self, keys: &BTreeSet<String>) -> Self {
        if keys.is_empty() {
            return self.clone();
        }
        Self {
            pairs: self
                .pairs
                .iter()
                .filter(|(k, _)| !keys.contains(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// Check what encrypt requires of a caller-supplied context: no key with the reserved
    /// `aws-crypto-` prefix, and no empty key or value (the Java ESDK rejects those on decrypt).
    pub fn validate_for_encrypt(&self) -> Result<(), FormatError> {
        for (k, v) in &self.pairs {
            if k.starts_with(RESERVED_PREFIX) {
                return Err(FormatError::ReservedEncryptionContextKey(k.clone()));
            }
            if k.is_empty() || v.is_empty() {
                return Err(FormatError::EmptyEncryptionContextEntry);
            }
        }
        Ok(())
    }

    /// Length of the canonical serialization.
    pub fn serialized_len(&self) -> usize {
        if self.pairs.is_empty() {
            return 0;
        }
        2 + self
            .pairs
            .iter()
            .map(|(k, v)| 4 + k.len() + v.len())
            .sum::<usize>()
    }

    /// The canonical serialization: empty for an empty context, else a `u16` pair count followed by
    /// `u16`-length-prefixed keys and values in UTF-8 byte order.
    pub fn serialize(&self) -> Result<Vec<u8>, FormatError> {
        let mut out = Vec::with_capacity(self.serialized_len());
        self.serialize_into(&mut out)?;
        Ok(out)
    }

    /// Append the canonical serialization to `out`.
    pub fn serialize_into(&self, out: &mut Vec<u8>) -> Result<(), FormatError> {
        if self.pairs.is_empty() {
            return Ok(());
        }
        let total = self.serialized_len();
        if total > MAX_SERIALIZED_LEN {
            return Err(FormatError::FieldTooLong {
                field: "serialized encryption context",
                len: total,
                max: MAX_SERIALIZED_LEN,
            });
        }
        // The total bound above also bounds the count and each field to u16.
        let count = u16::try_from(self.pairs.len()).map_err(|_| FormatError::FieldTooLong {
            field: "encryption context pair count",
            len: self.pairs.len(),
            max: usize::from(u16::MAX),
        })?;
        out.reserve(total);
        out.extend_from_slice(&count.to_be_bytes());
        for (k, v) in &self.pairs {
            put_short_bytes(out, k.as_bytes(), "encryption context key")?;
            put_short_bytes(out, v.as_bytes(), "encryption context value")?;
        }
        Ok(())
    }

    /// Parse a serialized encryption context (the whole AAD field, without its length prefix).
    ///
    /// Accepts pairs in any order (as every ESDK does when reading) but rejects duplicate keys,
    /// invalid UTF-8, a zero pair count and bytes left over after the last pair.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        if bytes.is_empty() {
            return Ok(Self::new());
        }
        let mut cursor = Cursor::new(bytes);
        let count = cursor.u16().map_err(|_| {
            FormatError::MalformedEncryptionContext("too short to hold the pair count")
        })?;
        if count == 0 {
            return Err(FormatError::MalformedEncryptionContext(
                "the pair count is zero but the section is not empty",
            ));
        }
        let mut pairs = BTreeMap::new();
        for _ in 0..count {
            let key = cursor.short_bytes().map_err(pair_error)?;
            let value = cursor.short_bytes().map_err(pair_error)?;
            let key = std::str::from_utf8(key)
                .map_err(|_| FormatError::InvalidUtf8("encryption context key"))?;
            let value = std::str::from_utf8(value)
                .map_err(|_| FormatError::InvalidUtf8("encryption context value"))?;
            if pairs.insert(key.to_owned(), value.to_owned()).is_some() {
                return Err(FormatError::DuplicateEncryptionContextKey(key.to_owned()));
            }
        }
        if cursor.position() != bytes.len() {
            return Err(FormatError::MalformedEncryptionContext(
                "bytes remain after the last pair",
            ));
        }
        Ok(Self { pairs })
    }
}

fn pair_error(stop: Stop) -> FormatError {
    match stop {
        Stop::Invalid(e) => e,
        Stop::Need(_) => FormatError::MalformedEncryptionContext("a pair runs past its length"),
    }
}

impl fmt::Debug for EncryptionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.pairs.iter()).finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for EncryptionContext {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self {
            pairs: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

impl<K: Into<String>, V: Into<String>> Extend<(K, V)> for EncryptionContext {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        self.pairs
            .extend(iter.into_iter().map(|(k, v)| (k.into(), v.into())));
    }
}

impl From<BTreeMap<String, String>> for EncryptionContext {
    fn from(pairs: BTreeMap<String, String>) -> Self {
        Self { pairs }
    }
}

impl From<HashMap<String, String>> for EncryptionContext {
    fn from(pairs: HashMap<String, String>) -> Self {
        Self {
            pairs: pairs.into_iter().collect(),
        }
    }
}

impl<K: Into<String>, V: Into<String>, const N: usize> From<[(K, V); N]> for EncryptionContext {
    fn from(pairs: [(K, V); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl From<EncryptionContext> for BTreeMap<String, String> {
    fn from(ec: EncryptionContext) -> Self {
        ec.pairs
    }
}

impl<'a> IntoIterator for &'a EncryptionContext {
    type Item = (&'a String, &'a String);
    type IntoIter = std::collections::btree_map::Iter<'a, String, String>;
    fn into_iter(self) -> Self::IntoIter {
        self.pairs.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_serializes_to_nothing() {
        assert_eq!(
            EncryptionContext::new().serialize().unwrap(),
            Vec::<u8>::new()
        );
        assert_eq!(
            EncryptionContext::parse(&[]).unwrap(),
            EncryptionContext::new()
        );
    }

    #[test]
    fn sorted_by_utf8_bytes_not_utf16() {
        // U+FF21 (EF BC A1) sorts before U+1F600 (F0 9F 98 80) in UTF-8 byte order,
        // but after it in UTF-16 code unit order (FF21 > D83D).
        let ec = EncryptionContext::from_iter([("\u{1F600}", "a"), ("\u{FF21}", "b"), ("A", "c")]);
        let bytes = ec.serialize().unwrap();
        let expected = hex::decode(concat!(
            "0003", "0001", "41", "0001", "63", "0003", "efbca1", "0001", "62", "0004", "f09f9880",
            "0001", "61"
        ))
        .unwrap();
        assert_eq!(bytes, expected);
        assert_eq!(EncryptionContext::parse(&bytes).unwrap(), ec);
    }

    #[test]
    fn kat_context_bytes() {
        // From kat-vectors.json `deterministic`: {"purpose":"kat","été":"😀","A":"x"}.
        let ec = EncryptionContext::from_iter([("purpose", "kat"), ("été", "😀"), ("A", "x")]);
        assert_eq!(
            hex::encode(ec.serialize().unwrap()),
            "00030001410001780007707572706f736500036b61740005c3a974c3a90004f09f9880"
        );
    }

    #[test]
    fn parse_rejects_malformed() {
        use FormatError::*;
        let cases: &[(&str, FormatError)] = &[
            (
                "00",
                MalformedEncryptionContext("too short to hold the pair count"),
            ),
            (
                "0000",
                MalformedEncryptionContext("the pair count is zero but the section is not empty"),
            ),
            (
                "0001000141",
                MalformedEncryptionContext("a pair runs past its length"),
            ),
            (
                "00010001410001",
                MalformedEncryptionContext("a pair runs past its length"),
            ),
            (
                "000100014100014200",
                MalformedEncryptionContext("bytes remain after the last pair"),
            ),
            (
                "0002000141000142000141000143",
                DuplicateEncryptionContextKey("A".into()),
            ),
            ("00010001ff000142", InvalidUtf8("encryption context key")),
            ("000100014100 01ff", InvalidUtf8("encryption context value")),
        ];
        for (hex_in, err) in cases {
            let bytes = hex::decode(hex_in.replace(' ', "")).unwrap();
            assert_eq!(
                EncryptionContext::parse(&bytes).unwrap_err(),
                *err,
                "{hex_in}"
            );
        }
    }

    #[test]
    fn unsorted_input_is_accepted() {
        let bytes = hex::decode("0002000142000178000141000179").unwrap();
        let ec = EncryptionContext::parse(&bytes).unwrap();
        assert_eq!(ec.get("A"), Some("y"));
        assert_eq!(ec.get("B"), Some("x"));
    }

    #[test]
    fn encrypt_validation() {
        let reserved = EncryptionContext::from_iter([("aws-crypto-public-key", "x")]);
        assert_eq!(
            reserved.validate_for_encrypt(),
            Err(FormatError::ReservedEncryptionContextKey(
                "aws-crypto-public-key".into()
            ))
        );
        let empty_key = EncryptionContext::from_iter([("", "x")]);
        assert_eq!(
            empty_key.validate_for_encrypt(),
            Err(FormatError::EmptyEncryptionContextEntry)
        );
        let empty_value = EncryptionContext::from_iter([("k", "")]);
        assert_eq!(
            empty_value.validate_for_encrypt(),
            Err(FormatError::EmptyEncryptionContextEntry)
        );
        // Only the prefix is reserved, not the word.
        assert!(
            EncryptionContext::from_iter([("aws-crypto", "x")])
                .validate_for_encrypt()
                .is_ok()
        );
    }

    #[test]
    fn too_large_is_rejected() {
        let ec = EncryptionContext::from_iter([("k", "v".repeat(65_530))]);
        assert!(matches!(
            ec.serialize(),
            Err(FormatError::FieldTooLong { .. })
        ));
        let ok = EncryptionContext::from_iter([("k", "v".repeat(65_535 - 2 - 4 - 1))]);
        assert_eq!(ok.serialize().unwrap().len(), 65_535);
    }

    #[test]
    fn restrict_and_without() {
        let ec = EncryptionContext::from_iter([("a", "1"), ("b", "2"), ("c", "3")]);
        assert_eq!(
            ec.restricted_to(["a", "c", "z"]),
            EncryptionContext::from_iter([("a", "1"), ("c", "3")])
        );
        let keys: BTreeSet<String> = ["b".to_string()].into();
        assert_eq!(
            ec.without(&keys),
            EncryptionContext::from_iter([("a", "1"), ("c", "3")])
        );
    }
}
