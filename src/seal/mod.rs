//! Sealed verification reports: envelope encryption to the civil-affairs recipients and an
//! Ed25519 signature by hedui's key (DESIGN §4, `schemas/sealed_report.json`).
//!
//! This is the last stage of the pipeline: `assess` produces a report, `batch` (or the API)
//! serialises it and calls [`RunSealer::seal`]; `hedui open` calls [`Opener::open`]. The
//! module knows nothing about what it seals: a plaintext is opaque bytes.
//!
//! # Crates
//! Randomness (`SystemRandom`), SHA-256, HKDF-SHA256, AES-256-GCM and Ed25519 come from
//! `ring` 0.17. `ring` has no API for a *persistent* X25519 private key (its
//! `agreement::EphemeralPrivateKey` cannot be saved or loaded), so the X25519 key agreement
//! uses `x25519-dalek` (`StaticSecret` / `PublicKey`); the secret bytes it is built from are
//! still drawn from `ring`'s `SystemRandom`.
//!
//! # Scheme (version 2)
//! Once per run ([`RunSealer::new`]):
//! - a random 32-byte *run secret*;
//! - for each recipient `R`, a fresh X25519 ephemeral key `e` (one per run and recipient):
//!   - `shared = X25519(e, R)` (rejected if it is all zeros, i.e. `R` is a low-order point);
//!   - `KEK = HKDF-SHA256(salt = "hedui-seal-v1", ikm = shared,
//!     info = run_id ‖ e_pub ‖ R_pub)` (32 bytes, RFC 5869);
//!   - `wrapped_key = AES-256-GCM(KEK, random 96-bit nonce, run secret, aad = run_id)`.
//!
//! Per report ([`RunSealer::seal`]):
//! - `content key = HKDF-SHA256(salt = run_id, ikm = run secret, info = "report:" ‖ report_id)`;
//! - `ciphertext = AES-256-GCM(content key, random 96-bit nonce, content, aad = report_id)`
//!   where `content` is, in version 2 (written), the plaintext's length as a u32
//!   little-endian and its LZ4 block (a report's JSON repeats its clauses and column names:
//!   the county's reports shrink about 2.3x, so the reports file, its writing and an
//!   incremental run's copy of it do), and in version 1 (still opened) the plaintext itself;
//! - `signature = Ed25519(hedui signing key, "hedui-sealed-report-sha256-v1" ‖
//!   SHA-256(encoding))` where `encoding` is a length-prefixed encoding of every other field
//!   (see `envelope::signed_bytes`): a domain tag, `version`, `report_id`, `run_id`,
//!   `signer_key_id`, `signer_public_key`, every recipient entry in order (`key_id`,
//!   `ephemeral_public`, `nonce`, `wrapped_key`), `nonce`, `ciphertext`. Signing the digest
//!   (one hardware SHA-256 pass) rather than the whole encoding (two SHA-512 passes inside
//!   Ed25519) keeps the signature's cost independent of the report's size.
//!
//! # Batch signing (version 3)
//! `hedui batch` seals with [`RunSealer::seal_unsigned`] and signs [`BATCH_LEAVES`] (32)
//! envelopes at once with [`RunSealer::sign_batch`]: each envelope's leaf is
//! `SHA-256(0x00 ‖ the message above)`, inner nodes `SHA-256(0x01 ‖ left ‖ right)` (RFC 6962's
//! separation; the last node of an odd level goes up unchanged), and the one signature is
//! `Ed25519("hedui-sealed-report-batch-root-v1" ‖ leaf count ‖ root)`. Each envelope carries
//! its inclusion proof (`batch`: index, size, sibling hashes), so it still verifies and opens
//! alone; an [`Opener`] checks a batch's signature once and then only hashes. The signature
//! was ~13 % of a county batch's CPU (~20 µs per report); it is now 1/32 of that, for five
//! more hashes (~230 bytes) per envelope. `hedui serve` and `hedui check` seal one report at
//! a time with [`RunSealer::seal`] (version 2).
//!
//! What a run is belongs to the caller: `hedui batch` seals one run per batch; `hedui serve`
//! one *sealing run* per hour or 100,000 reports (`crate::api`), each report under its own
//! `report_id` (`<job id>/<household id>`, unique), so the X25519 agreements are not paid per
//! request.
//!
//! Every envelope carries the run's wrapped keys, so each one opens on its own; an
//! [`Opener`] caches the unwrapped run secret per run and wrapped key, so opening the 30,000
//! reports of one run costs one key agreement. Opening checks the signature first (against
//! the trusted signer when one is given), then finds this key's entry, unwraps, derives and
//! decrypts. Any change to a signed field fails as [`SealError::Tampered`] (or
//! [`SealError::Format`] when it no longer parses).
//!
//! # Key files
//! Text, one line, `LABEL BASE64` (standard alphabet, padded), written by [`keygen`]:
//!
//! | file                | label                      | content                       | mode |
//! |---------------------|----------------------------|-------------------------------|------|
//! | `civil.key`         | `hedui-x25519-private-v1`  | 32-byte X25519 secret         | 0600 |
//! | `civil.pub`         | `hedui-x25519-public-v1`   | 32-byte X25519 public key     | 0644 |
//! | `hedui-signing.key` | `hedui-ed25519-private-v1` | Ed25519 PKCS#8 v2 document    | 0600 |
//! | `hedui-signing.pub` | `hedui-ed25519-public-v1`  | 32-byte Ed25519 public key    | 0644 |
//!
//! A key id is the first 8 bytes of SHA-256 of the public key, as 16 lowercase hex digits.

mod envelope;
mod keys;

use std::path::PathBuf;

pub use envelope::{
    BATCH_LEAVES, BatchProof, Opener, RunSealer, SEAL_VERSION, SEAL_VERSION_BATCH, SealedReport,
    UnsignedReport, WrappedKey,
};
pub use keys::{
    KeyPaths, RecipientPrivateKey, RecipientPublicKey, SigningKey, VerifyingKey, keygen,
};

/// Everything that can go wrong while making keys, sealing or opening a report.
///
/// Messages never contain key material or plaintext; they name keys by key id.
#[derive(thiserror::Error, Debug)]
pub enum SealError {
    /// The report has no entry for the opening key.
    #[error(
        "this report is not sealed to key {key_id}; it is sealed to {}",
        .sealed_to.join(", ")
    )]
    WrongKey {
        /// Key id of the recipient key used to open.
        key_id: String,
        /// Key ids the report is sealed to, in envelope order.
        sealed_to: Vec<String>,
    },
    /// The signature does not verify, or an AEAD tag does not: the envelope was changed.
    /// The string says which check failed.
    #[error("the sealed report was changed after sealing ({0})")]
    Tampered(String),
    /// The report verifies under its embedded key, but that key is not the trusted signer.
    #[error("the report is signed by key {found}, not by the trusted signer {expected}")]
    UntrustedSigner {
        /// Key id of the trusted signer given to the [`Opener`].
        expected: String,
        /// Key id embedded in the report.
        found: String,
    },
    /// Malformed input: bad base64, wrong length, unknown version, malformed key file.
    /// The string names the field or file.
    #[error("malformed input: {0}")]
    Format(String),
    /// Reading or writing a key file failed (including refusing to overwrite one).
    #[error("cannot access key file {}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A cryptographic primitive failed where it should not (e.g. no system randomness),
    /// or the request cannot be sealed (no recipients, low-order recipient key).
    #[error("cryptographic failure: {0}")]
    Crypto(String),
}
