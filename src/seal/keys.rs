//! Key types and key files for sealing: the civil-affairs recipients' X25519 keys and hedui's
//! Ed25519 signing key, their one-line text format, key ids, and `hedui keygen`.
//!
//! File format (see the table in the `seal` module docs): one line `LABEL BASE64`, standard
//! padded base64; private files are created with mode 0600 and never overwritten.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

use super::SealError;

/// Label of an X25519 recipient private key line.
const RECIPIENT_PRIVATE_LABEL: &str = "hedui-x25519-private-v1";
/// Label of an X25519 recipient public key line.
const RECIPIENT_PUBLIC_LABEL: &str = "hedui-x25519-public-v1";
/// Label of an Ed25519 signing key line (PKCS#8 v2 document).
const SIGNING_PRIVATE_LABEL: &str = "hedui-ed25519-private-v1";
/// Label of an Ed25519 verifying key line.
const SIGNING_PUBLIC_LABEL: &str = "hedui-ed25519-public-v1";

/// Key id of a public key: the first 8 bytes of its SHA-256, as 16 lowercase hex digits.
pub(super) fn key_id_of(public: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, public);
    hex::encode(&digest.as_ref()[..8])
}

/// Whether `s` has the shape of a key id (16 lowercase hex digits).
pub(super) fn is_key_id(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `N` bytes from the operating system's CSPRNG (via `ring`).
///
/// Errors: [`SealError::Crypto`] when the system has no randomness to give.
pub(super) fn random_bytes<const N: usize>(rng: &SystemRandom) -> Result<[u8; N], SealError> {
    let mut out = [0u8; N];
    rng.fill(&mut out)
        .map_err(|_| SealError::Crypto("the system random number generator failed".into()))?;
    Ok(out)
}

/// Parses one `LABEL BASE64` key line and returns the decoded bytes.
///
/// Blank lines and surrounding whitespace are ignored; exactly one key line is allowed.
/// The error string never contains key material, and names the found label only when it
/// looks like one of ours.
fn parse_key_text(text: &str, label: &str) -> Result<Vec<u8>, String> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let line = lines
        .next()
        .ok_or_else(|| "the key text is empty".to_string())?;
    if lines.next().is_some() {
        return Err("expected one key line, found more than one".into());
    }
    let Some((found, encoded)) = line.split_once(char::is_whitespace) else {
        return Err(format!("expected a line '{label} <base64>'"));
    };
    if found != label {
        let looks_like_ours = found.starts_with("hedui-")
            && found.len() <= 40
            && found
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        return Err(if looks_like_ours {
            format!("expected a '{label}' key, found a '{found}' key")
        } else {
            format!("expected a line '{label} <base64>'")
        });
    }
    BASE64
        .decode(encoded.trim())
        .map_err(|_| format!("the '{label}' key is not valid base64"))
}

/// Parses a key line that must hold exactly 32 bytes.
fn parse_32(text: &str, label: &str) -> Result<[u8; 32], String> {
    let bytes = parse_key_text(text, label)?;
    let len = bytes.len();
    <[u8; 32]>::try_from(bytes)
        .map_err(|_| format!("the '{label}' key must be 32 bytes, found {len}"))
}

/// One key line, newline-terminated.
fn key_line(label: &str, bytes: &[u8]) -> String {
    format!("{label} {}\n", BASE64.encode(bytes))
}

/// Reads a key file as text. Errors: [`SealError::Io`] naming the path.
fn read_key_file(path: &Path) -> Result<String, SealError> {
    fs::read_to_string(path).map_err(|source| SealError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Turns a parse error of a key file into [`SealError::Format`] naming the file.
fn file_format_error(path: &Path) -> impl FnOnce(String) -> SealError + '_ {
    move |msg| SealError::Format(format!("key file {}: {msg}", path.display()))
}

/// An X25519 public key of a civil-affairs recipient (32 bytes, RFC 7748).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RecipientPublicKey {
    bytes: [u8; 32],
}

impl RecipientPublicKey {
    /// Wraps the 32 raw bytes of an X25519 public key (no validation: a low-order point is
    /// refused later, by [`super::RunSealer::new`]).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self { bytes }
    }

    /// The 32 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// Key id: first 8 bytes of SHA-256 of the 32 key bytes, 16 lowercase hex digits.
    pub fn key_id(&self) -> String {
        key_id_of(&self.bytes)
    }

    /// Parses the text of a `civil.pub` file: `hedui-x25519-public-v1 <base64 of 32 bytes>`.
    ///
    /// Errors: [`SealError::Format`] for a wrong label, bad base64 or a wrong length.
    pub fn from_text(text: &str) -> Result<Self, SealError> {
        parse_32(text, RECIPIENT_PUBLIC_LABEL)
            .map(Self::from_bytes)
            .map_err(|msg| SealError::Format(format!("recipient public key: {msg}")))
    }

    /// The key file text (one line, newline-terminated); inverse of [`Self::from_text`].
    pub fn to_text(&self) -> String {
        key_line(RECIPIENT_PUBLIC_LABEL, &self.bytes)
    }

    /// Loads a `civil.pub` file.
    ///
    /// Errors: [`SealError::Io`] if it cannot be read, [`SealError::Format`] naming the file.
    pub fn load(path: &Path) -> Result<Self, SealError> {
        let text = read_key_file(path)?;
        parse_32(&text, RECIPIENT_PUBLIC_LABEL)
            .map(Self::from_bytes)
            .map_err(file_format_error(path))
    }
}

impl fmt::Debug for RecipientPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecipientPublicKey")
            .field("key_id", &self.key_id())
            .finish()
    }
}

/// A civil-affairs recipient's X25519 static secret (32 bytes). Zeroed on drop
/// (`x25519-dalek`'s `zeroize` feature); `Debug` shows only the public key id.
#[derive(Clone)]
pub struct RecipientPrivateKey {
    secret: x25519_dalek::StaticSecret,
}

impl RecipientPrivateKey {
    /// A fresh random key (32 bytes from `ring`'s `SystemRandom`, clamped by X25519).
    ///
    /// Errors: [`SealError::Crypto`] when the system has no randomness.
    pub fn generate() -> Result<Self, SealError> {
        let bytes: [u8; 32] = random_bytes(&SystemRandom::new())?;
        Ok(Self {
            secret: x25519_dalek::StaticSecret::from(bytes),
        })
    }

    /// Parses the text of a `civil.key` file: `hedui-x25519-private-v1 <base64 of 32 bytes>`.
    ///
    /// Errors: [`SealError::Format`] (the message never contains the key).
    pub fn from_text(text: &str) -> Result<Self, SealError> {
        Self::parse(text).map_err(|msg| SealError::Format(format!("recipient private key: {msg}")))
    }

    /// Loads a `civil.key` file.
    ///
    /// Errors: [`SealError::Io`] if it cannot be read, [`SealError::Format`] naming the file.
    pub fn load(path: &Path) -> Result<Self, SealError> {
        let text = read_key_file(path)?;
        Self::parse(&text).map_err(file_format_error(path))
    }

    fn parse(text: &str) -> Result<Self, String> {
        parse_32(text, RECIPIENT_PRIVATE_LABEL).map(|bytes| Self {
            secret: x25519_dalek::StaticSecret::from(bytes),
        })
    }

    /// The matching public key.
    pub fn public(&self) -> RecipientPublicKey {
        RecipientPublicKey::from_bytes(x25519_dalek::PublicKey::from(&self.secret).to_bytes())
    }

    /// Key id of the matching public key.
    pub fn key_id(&self) -> String {
        self.public().key_id()
    }

    /// X25519 with a peer's public key (the ephemeral key of a sealed report).
    pub(super) fn diffie_hellman(&self, peer: &[u8; 32]) -> x25519_dalek::SharedSecret {
        self.secret
            .diffie_hellman(&x25519_dalek::PublicKey::from(*peer))
    }

    /// The key file text. Private to this module: only `keygen` writes it.
    fn to_text(&self) -> String {
        key_line(RECIPIENT_PRIVATE_LABEL, self.secret.as_bytes())
    }
}

impl fmt::Debug for RecipientPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecipientPrivateKey")
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

/// hedui's Ed25519 signing key (RFC 8032), parsed from a PKCS#8 document.
/// Cheap to clone (shared); `Debug` shows only the key id.
#[derive(Clone)]
pub struct SigningKey {
    pair: Arc<Ed25519KeyPair>,
}

impl SigningKey {
    /// A fresh key pair (PKCS#8 v2 generated by `ring`); returns the key and its PKCS#8 bytes.
    fn generate_with_pkcs8() -> Result<(Self, Vec<u8>), SealError> {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| SealError::Crypto("generating an Ed25519 key pair failed".into()))?;
        let key = Self::from_pkcs8(pkcs8.as_ref())
            .map_err(|msg| SealError::Crypto(format!("a freshly generated key {msg}")))?;
        Ok((key, pkcs8.as_ref().to_vec()))
    }

    /// A fresh random signing key.
    ///
    /// Errors: [`SealError::Crypto`] when the system has no randomness.
    pub fn generate() -> Result<Self, SealError> {
        Self::generate_with_pkcs8().map(|(key, _)| key)
    }

    /// Parses an Ed25519 PKCS#8 document: v2 (as `ring` and `hedui keygen` write it) or v1
    /// (as `openssl genpkey -algorithm ed25519` writes it).
    fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, String> {
        Ed25519KeyPair::from_pkcs8(pkcs8)
            .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8))
            .map(|pair| Self {
                pair: Arc::new(pair),
            })
            .map_err(|rejected| format!("is not an Ed25519 PKCS#8 document ({rejected})"))
    }

    fn parse(text: &str) -> Result<Self, String> {
        let der = parse_key_text(text, SIGNING_PRIVATE_LABEL)?;
        Self::from_pkcs8(&der).map_err(|msg| format!("the '{SIGNING_PRIVATE_LABEL}' key {msg}"))
    }

    /// Parses the text of a `hedui-signing.key` file:
    /// `hedui-ed25519-private-v1 <base64 of a PKCS#8 document>`.
    ///
    /// Errors: [`SealError::Format`] (the message never contains the key).
    pub fn from_text(text: &str) -> Result<Self, SealError> {
        Self::parse(text).map_err(|msg| SealError::Format(format!("signing key: {msg}")))
    }

    /// Loads a `hedui-signing.key` file.
    ///
    /// Errors: [`SealError::Io`] if it cannot be read, [`SealError::Format`] naming the file.
    pub fn load(path: &Path) -> Result<Self, SealError> {
        let text = read_key_file(path)?;
        Self::parse(&text).map_err(file_format_error(path))
    }

    /// A 32-byte secret derived from this key for `label` (SHA-256 of the key's Ed25519
    /// signature of `label`, which RFC 8032 makes deterministic): the same for every run that
    /// holds the key, and unknowable without it. Keys pseudonyms that must be stable across
    /// runs and not computable from the values they stand for (household aliases).
    pub fn derive_secret(&self, label: &[u8]) -> [u8; 32] {
        let sig = self.pair.sign(label);
        let d = ring::digest::digest(&ring::digest::SHA256, sig.as_ref());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        let mut bytes = [0u8; 32];
        // An Ed25519 public key is always 32 bytes (RFC 8032 §5.1.5).
        bytes.copy_from_slice(self.pair.public_key().as_ref());
        VerifyingKey::from_bytes(bytes)
    }

    /// Key id of the matching public key.
    pub fn key_id(&self) -> String {
        self.verifying_key().key_id()
    }

    /// Signs `message` (64-byte Ed25519 signature).
    pub(super) fn sign(&self, message: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.pair.sign(message).as_ref());
        out
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

/// hedui's Ed25519 public key (32 bytes), used to check a sealed report's signature.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VerifyingKey {
    bytes: [u8; 32],
}

impl VerifyingKey {
    /// Wraps the 32 raw bytes of an Ed25519 public key (validated when verifying).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self { bytes }
    }

    /// The 32 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// Key id: first 8 bytes of SHA-256 of the 32 key bytes, 16 lowercase hex digits.
    pub fn key_id(&self) -> String {
        key_id_of(&self.bytes)
    }

    /// Parses the text of a `hedui-signing.pub` file:
    /// `hedui-ed25519-public-v1 <base64 of 32 bytes>`.
    ///
    /// Errors: [`SealError::Format`].
    pub fn from_text(text: &str) -> Result<Self, SealError> {
        parse_32(text, SIGNING_PUBLIC_LABEL)
            .map(Self::from_bytes)
            .map_err(|msg| SealError::Format(format!("verifying key: {msg}")))
    }

    /// The key file text (one line, newline-terminated); inverse of [`Self::from_text`].
    pub fn to_text(&self) -> String {
        key_line(SIGNING_PUBLIC_LABEL, &self.bytes)
    }

    /// Loads a `hedui-signing.pub` file.
    ///
    /// Errors: [`SealError::Io`] if it cannot be read, [`SealError::Format`] naming the file.
    pub fn load(path: &Path) -> Result<Self, SealError> {
        let text = read_key_file(path)?;
        parse_32(&text, SIGNING_PUBLIC_LABEL)
            .map(Self::from_bytes)
            .map_err(file_format_error(path))
    }

    /// Whether `signature` is a valid Ed25519 signature of `message` under this key.
    pub(super) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&signature::ED25519, &self.bytes)
            .verify(message, signature)
            .is_ok()
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("key_id", &self.key_id())
            .finish()
    }
}

/// Where [`keygen`] wrote the four key files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPaths {
    /// `DIR/civil.key`: the recipients' X25519 private key (mode 0600). Give to civil affairs.
    pub recipient_private: PathBuf,
    /// `DIR/civil.pub`: the recipients' X25519 public key. hedui seals to it.
    pub recipient_public: PathBuf,
    /// `DIR/hedui-signing.key`: hedui's Ed25519 signing key (mode 0600). Keep with hedui.
    pub signing_private: PathBuf,
    /// `DIR/hedui-signing.pub`: hedui's Ed25519 public key. Openers trust it.
    pub signing_public: PathBuf,
}

/// Generates a recipient key pair and a signing key pair and writes them to `dir` as
/// `civil.key`, `civil.pub`, `hedui-signing.key`, `hedui-signing.pub` (one line each; private
/// files mode 0600 on Unix). Creates `dir` if missing.
///
/// Errors: [`SealError::Io`] if `dir` cannot be created, if any of the four files already
/// exists (nothing is written then: keys are never overwritten), or a write fails;
/// [`SealError::Crypto`] when the system has no randomness.
pub fn keygen(dir: &Path) -> Result<KeyPaths, SealError> {
    fs::create_dir_all(dir).map_err(|source| SealError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let paths = KeyPaths {
        recipient_private: dir.join("civil.key"),
        recipient_public: dir.join("civil.pub"),
        signing_private: dir.join("hedui-signing.key"),
        signing_public: dir.join("hedui-signing.pub"),
    };
    let all = [
        &paths.recipient_private,
        &paths.recipient_public,
        &paths.signing_private,
        &paths.signing_public,
    ];
    // Check all four before writing any, so a refused keygen leaves no half-written set.
    // `symlink_metadata` also catches a dangling symlink that `create_new` would refuse.
    if let Some(existing) = all.iter().find(|p| fs::symlink_metadata(p).is_ok()) {
        return Err(SealError::Io {
            path: existing.to_path_buf(),
            source: io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the key file already exists; refusing to overwrite a key",
            ),
        });
    }

    let recipient = RecipientPrivateKey::generate()?;
    let (signing, pkcs8) = SigningKey::generate_with_pkcs8()?;

    write_key_file(&paths.recipient_private, &recipient.to_text(), true)?;
    write_key_file(
        &paths.recipient_public,
        &recipient.public().to_text(),
        false,
    )?;
    write_key_file(
        &paths.signing_private,
        &key_line(SIGNING_PRIVATE_LABEL, &pkcs8),
        true,
    )?;
    write_key_file(
        &paths.signing_public,
        &signing.verifying_key().to_text(),
        false,
    )?;
    Ok(paths)
}

/// Creates `path` (failing if it exists) and writes `text`; `private` files get mode 0600.
fn write_key_file(path: &Path, text: &str, private: bool) -> Result<(), SealError> {
    let io_error = |source| SealError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(io_error)?;
    file.write_all(text.as_bytes()).map_err(io_error)?;
    file.sync_all().map_err(io_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_writes_four_one_line_key_files_that_load_back_as_matching_pairs() {
        let dir = tempfile::tempdir().unwrap();
        let paths = keygen(dir.path()).unwrap();
        assert_eq!(paths.recipient_private, dir.path().join("civil.key"));
        assert_eq!(paths.recipient_public, dir.path().join("civil.pub"));
        assert_eq!(paths.signing_private, dir.path().join("hedui-signing.key"));
        assert_eq!(paths.signing_public, dir.path().join("hedui-signing.pub"));

        for (path, label) in [
            (&paths.recipient_private, RECIPIENT_PRIVATE_LABEL),
            (&paths.recipient_public, RECIPIENT_PUBLIC_LABEL),
            (&paths.signing_private, SIGNING_PRIVATE_LABEL),
            (&paths.signing_public, SIGNING_PUBLIC_LABEL),
        ] {
            let text = fs::read_to_string(path).unwrap();
            assert_eq!(text.lines().count(), 1, "{}", path.display());
            assert!(text.ends_with('\n'));
            assert!(text.starts_with(&format!("{label} ")), "{text}");
        }

        let private = RecipientPrivateKey::load(&paths.recipient_private).unwrap();
        let public = RecipientPublicKey::load(&paths.recipient_public).unwrap();
        assert_eq!(private.public(), public);
        let signing = SigningKey::load(&paths.signing_private).unwrap();
        let verifying = VerifyingKey::load(&paths.signing_public).unwrap();
        assert_eq!(signing.verifying_key(), verifying);
        assert!(verifying.verifies(b"message", &signing.sign(b"message")));
    }

    #[test]
    fn keygen_refuses_to_overwrite_and_leaves_existing_files_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let first = keygen(dir.path()).unwrap();
        let before = fs::read_to_string(&first.recipient_private).unwrap();

        let err = keygen(dir.path()).unwrap_err();
        assert!(
            matches!(&err, SealError::Io { source, .. } if source.kind() == io::ErrorKind::AlreadyExists),
            "{err:?}"
        );
        assert_eq!(
            fs::read_to_string(&first.recipient_private).unwrap(),
            before
        );

        // One existing file is enough to refuse, and then nothing else is written.
        let other = tempfile::tempdir().unwrap();
        fs::write(other.path().join("hedui-signing.pub"), "keep me").unwrap();
        let err = keygen(other.path()).unwrap_err();
        assert!(err.to_string().contains("hedui-signing.pub"), "{err}");
        assert!(!other.path().join("civil.key").exists());
    }

    #[cfg(unix)]
    #[test]
    fn private_key_files_are_readable_by_the_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let paths = keygen(dir.path()).unwrap();
        for path in [&paths.recipient_private, &paths.signing_private] {
            let mode = fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
        }
    }

    #[test]
    fn keygen_creates_a_missing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("keys").join("2024");
        let paths = keygen(&nested).unwrap();
        assert!(paths.recipient_public.exists());
    }

    #[test]
    fn public_key_texts_round_trip_and_keep_their_key_ids() {
        let private = RecipientPrivateKey::generate().unwrap();
        let public = private.public();
        let again = RecipientPublicKey::from_text(&public.to_text()).unwrap();
        assert_eq!(again, public);
        assert_eq!(again.key_id(), private.key_id());

        let verifying = SigningKey::generate().unwrap().verifying_key();
        let again = VerifyingKey::from_text(&verifying.to_text()).unwrap();
        assert_eq!(again, verifying);
        assert_eq!(again.key_id(), verifying.key_id());
    }

    #[test]
    fn private_key_texts_round_trip() {
        let private = RecipientPrivateKey::generate().unwrap();
        let again = RecipientPrivateKey::from_text(&private.to_text()).unwrap();
        assert_eq!(again.public(), private.public());
    }

    #[test]
    fn a_key_id_is_the_first_eight_bytes_of_sha256_in_lowercase_hex() {
        let key = RecipientPublicKey::from_bytes([7u8; 32]);
        let digest = ring::digest::digest(&ring::digest::SHA256, &[7u8; 32]);
        assert_eq!(key.key_id(), hex::encode(&digest.as_ref()[..8]));
        assert!(is_key_id(&key.key_id()));
        assert!(!is_key_id("0123456789ABCDEF"));
        assert!(!is_key_id("0123456789abcde"));
    }

    #[test]
    fn a_key_file_with_the_wrong_label_is_a_format_error_naming_the_file_and_labels() {
        let dir = tempfile::tempdir().unwrap();
        let paths = keygen(dir.path()).unwrap();
        let err = RecipientPublicKey::load(&paths.recipient_private).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, SealError::Format(_)), "{err:?}");
        assert!(msg.contains("civil.key"), "{msg}");
        assert!(msg.contains(RECIPIENT_PUBLIC_LABEL), "{msg}");
        assert!(msg.contains(RECIPIENT_PRIVATE_LABEL), "{msg}");
    }

    #[test]
    fn a_format_error_in_a_private_key_never_echoes_the_key() {
        let private = RecipientPrivateKey::generate().unwrap();
        let text = private.to_text();
        let encoded = text.split_whitespace().nth(1).unwrap();
        for bad in [
            text.replace(RECIPIENT_PRIVATE_LABEL, "ssh-ed25519"),
            format!("{text}{text}"),
            format!("{RECIPIENT_PRIVATE_LABEL} {encoded}!"),
        ] {
            let err = RecipientPrivateKey::from_text(&bad).unwrap_err();
            assert!(matches!(err, SealError::Format(_)), "{err:?}");
            assert!(!err.to_string().contains(encoded), "{err}");
        }
    }

    #[test]
    fn keys_of_the_wrong_length_or_bad_base64_are_rejected() {
        for text in [
            "",
            "   \n",
            "hedui-x25519-public-v1",
            "hedui-x25519-public-v1 AAAA",
            "hedui-x25519-public-v1 not*base64",
            "hedui-x25519-public-v1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            let err = RecipientPublicKey::from_text(text).unwrap_err();
            assert!(matches!(err, SealError::Format(_)), "{text:?}: {err:?}");
        }
        let err = SigningKey::from_text("hedui-ed25519-private-v1 AAAA").unwrap_err();
        assert!(matches!(err, SealError::Format(_)), "{err:?}");
    }

    #[test]
    fn a_pkcs8_v1_signing_key_as_openssl_writes_it_is_accepted() {
        // RFC 8410 §10.3 example private key (PKCS#8 v1, no public key inside); its public
        // key is the one in RFC 8410 §10.1.
        let text = "hedui-ed25519-private-v1 \
                    MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC";
        let key = SigningKey::from_text(text).unwrap();
        assert_eq!(
            hex::encode(key.verifying_key().as_bytes()),
            "19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1"
        );
    }

    #[test]
    fn surrounding_blank_lines_and_spaces_are_accepted() {
        let public = RecipientPrivateKey::generate().unwrap().public();
        let padded = format!("\n  {}  \n\n", public.to_text().trim_end());
        assert_eq!(RecipientPublicKey::from_text(&padded).unwrap(), public);
    }

    #[test]
    fn a_missing_key_file_is_an_io_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nowhere.key");
        let err = SigningKey::load(&path).unwrap_err();
        assert!(matches!(err, SealError::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("nowhere.key"), "{err}");
    }

    #[test]
    fn debug_of_private_keys_shows_the_key_id_and_not_the_key() {
        let private = RecipientPrivateKey::generate().unwrap();
        let shown = format!("{private:?}");
        assert!(shown.contains(&private.key_id()), "{shown}");
        let encoded = private.to_text();
        let encoded = encoded.split_whitespace().nth(1).unwrap();
        assert!(!shown.contains(encoded), "{shown}");
        assert!(
            !shown.contains(&hex::encode(private.secret.as_bytes())),
            "{shown}"
        );

        let signing = SigningKey::generate().unwrap();
        let shown = format!("{signing:?}");
        assert_eq!(
            shown,
            format!("SigningKey {{ key_id: {:?}, .. }}", signing.key_id())
        );
    }
}
