//! The sealed envelope (`schemas/sealed_report.json`): [`RunSealer`] makes one per report
//! with one key agreement per run and recipient; [`Opener`] checks and opens them, caching
//! the unwrapped run secret. The scheme is described in the `seal` module docs.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;
use ring::rand::SystemRandom;
use serde::{Deserialize, Serialize};

use super::SealError;
use super::keys::{
    RecipientPrivateKey, RecipientPublicKey, SigningKey, VerifyingKey, is_key_id, key_id_of,
    random_bytes,
};

/// The envelope version this build writes: 2, the report LZ4-compressed inside the
/// ciphertext (see the `seal` module docs). It also reads [`SEAL_VERSION_UNCOMPRESSED`].
pub const SEAL_VERSION: u32 = 2;

/// Version 1: the same envelope with the report uncompressed inside the ciphertext.
pub const SEAL_VERSION_UNCOMPRESSED: u32 = 1;

/// Version 3: version 2's content, signed as one of a batch ([`RunSealer::sign_batch`],
/// what `hedui batch` writes): the Ed25519 signature is over the root of a Merkle tree
/// (SHA-256) of the batch's envelopes, and [`SealedReport::batch`] carries this envelope's
/// inclusion proof, so each envelope still verifies and opens on its own.
pub const SEAL_VERSION_BATCH: u32 = 3;

/// Envelopes per signed batch that `hedui batch` uses: one Ed25519 signature per 32 reports
/// instead of one each (a signature is ~20 µs; the proof adds 5 hashes, ~230 bytes, to an
/// envelope of ~4 KB).
pub const BATCH_LEAVES: usize = 32;

/// Most leaves a batch may declare: bounds the proof a reader walks (12 hashes).
const MAX_BATCH_LEAVES: u32 = 4096;
/// First byte hashed for a leaf (an envelope's signed message) and for an inner node
/// (RFC 6962 §2.1's separation, so a leaf can never pass for a node).
const LEAF_TAG: u8 = 0;
const NODE_TAG: u8 = 1;
/// First bytes of what a batch signature is over: this tag, the leaf count as a u32
/// big-endian, the root.
const BATCH_ROOT_DOMAIN: &[u8] = b"hedui-sealed-report-batch-root-v1";

/// Largest plaintext a version-2 envelope may declare (bytes): a report is a few KiB; the
/// bound keeps a corrupt (but signed) length from allocating gigabytes.
const MAX_PLAINTEXT: usize = 256 << 20;

/// HKDF salt of the key-encryption key.
const KEK_SALT: &[u8] = b"hedui-seal-v1";
/// HKDF info prefix of a report's content key.
const REPORT_INFO_PREFIX: &[u8] = b"report:";
/// First field of the signed bytes, so a signature of something else never verifies here.
const SIGNATURE_DOMAIN: &[u8] = b"hedui-sealed-report-signature-v1";
/// Tag of the signed message: the SHA-256 digest of the length-prefixed encoding follows.
const SIGNATURE_PREHASH: &[u8] = b"hedui-sealed-report-sha256-v1";
/// AES-GCM tag length in bytes.
const TAG_LEN: usize = 16;
/// Bytes of the run secret, and so of a wrapped key before its tag.
const RUN_SECRET_LEN: usize = 32;
/// Cached run secrets an [`Opener`] keeps before it starts over (one per run and key).
const MAX_CACHED_RUNS: usize = 4096;
/// Verified batch signatures an [`Opener`] remembers before it starts over.
const MAX_CACHED_ROOTS: usize = 1 << 16;

/// One sealed report, as written to the run's report file (`schemas/sealed_report.json`).
///
/// Binary fields are standard, padded base64. Every field except `signature` is covered by
/// the signature.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SealedReport {
    /// Envelope version, [`SEAL_VERSION`].
    pub version: u32,
    /// The report's id (the household id in a batch); authenticated as the AEAD's AAD and
    /// bound into the content key.
    pub report_id: String,
    /// The run that sealed it; reports of one run share the recipients' wrapped keys.
    pub run_id: String,
    /// Key id of `signer_public_key` (16 hex digits).
    pub signer_key_id: String,
    /// hedui's Ed25519 public key, 32 bytes.
    pub signer_public_key: String,
    /// One wrapped run secret per recipient, in the order given to [`RunSealer::new`].
    pub recipients: Vec<WrappedKey>,
    /// AES-256-GCM nonce of `ciphertext`, 12 bytes.
    pub nonce: String,
    /// AES-256-GCM ciphertext with its 16-byte tag appended.
    pub ciphertext: String,
    /// Ed25519 signature, 64 bytes: in versions 1 and 2 over the length-prefixed encoding of
    /// all other fields; in version 3 over the root of the batch that `batch` proves this
    /// envelope's encoding part of.
    pub signature: String,
    /// Version 3 only: where this envelope sits in the batch its signature covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchProof>,
}

impl SealedReport {
    /// The envelope as one line of JSON (no newline): byte for byte what
    /// `serde_json::to_string` gives, with the base64 fields (about 4 KB of ciphertext per
    /// report) copied rather than passed through serde_json's byte-by-byte escaping, which
    /// they never need ([`write_json_str`]).
    pub fn to_json_line(&self) -> String {
        // (only whole UTF-8 strings and ASCII are written)
        String::from_utf8(self.to_json_bytes()).expect("UTF-8")
    }

    /// [`SealedReport::to_json_line`] as the UTF-8 bytes it is, not checked again: the batch
    /// writes ~1.4 GB of them at 300,000 households, where checking each line cost 5 % of
    /// the assessment stage's CPU.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.ciphertext.len() + 1024);
        out.extend_from_slice(b"{\"version\":");
        out.extend_from_slice(self.version.to_string().as_bytes());
        for (name, value) in [
            ("report_id", &self.report_id),
            ("run_id", &self.run_id),
            ("signer_key_id", &self.signer_key_id),
            ("signer_public_key", &self.signer_public_key),
        ] {
            write_json_field(&mut out, name, value);
        }
        out.extend_from_slice(b",\"recipients\":");
        serde_json::to_writer(&mut out, &self.recipients).expect("JSON to memory");
        for (name, value) in [
            ("nonce", &self.nonce),
            ("ciphertext", &self.ciphertext),
            ("signature", &self.signature),
        ] {
            write_json_field(&mut out, name, value);
        }
        if let Some(batch) = &self.batch {
            out.extend_from_slice(b",\"batch\":{\"index\":");
            out.extend_from_slice(batch.index.to_string().as_bytes());
            out.extend_from_slice(b",\"size\":");
            out.extend_from_slice(batch.size.to_string().as_bytes());
            out.extend_from_slice(b",\"path\":[");
            for (i, p) in batch.path.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_str(&mut out, p);
            }
            out.extend_from_slice(b"]}");
        }
        out.push(b'}');
        out
    }
}

/// `,"name":` and `value` as a JSON string ([`write_json_str`]).
fn write_json_field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
    write_json_str(out, value);
}

/// `s` as a JSON string, as serde_json writes it: copied between quotes when it has nothing
/// to escape (no control character, quote or backslash: tested without a branch per byte,
/// so the test runs many bytes per cycle), else serde_json's own escaping.
fn write_json_str(out: &mut Vec<u8>, s: &str) {
    let plain = !s.as_bytes().iter().fold(false, |esc, &b| {
        esc | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if plain {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, s).expect("JSON to memory");
    }
}

/// A version-3 envelope's inclusion proof in its signed batch (a Merkle tree, SHA-256, with
/// RFC 6962's leaf/node prefixes; the last node of a level with an odd count is carried up
/// unchanged).
///
/// The leaf is `SHA-256(0x00 ‖ signed message)`, the message being what a version-2
/// signature is over; a node is `SHA-256(0x01 ‖ left ‖ right)`; the signature is over
/// `"hedui-sealed-report-batch-root-v1" ‖ size (u32 big-endian) ‖ root`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BatchProof {
    /// This envelope's leaf, 0-based, below `size`.
    pub index: u32,
    /// Leaves in the batch, 1 to 4,096.
    pub size: u32,
    /// The sibling hashes from the leaf up, 32 bytes each; a level where this node has no
    /// sibling contributes none.
    pub path: Vec<String>,
}

/// An envelope sealed but not yet signed ([`RunSealer::seal_unsigned`]): give a batch of
/// them to [`RunSealer::sign_batch`].
#[derive(Debug)]
pub struct UnsignedReport {
    envelope: SealedReport,
    leaf: [u8; 32],
}

/// `SHA-256(tag ‖ parts…)`.
fn tagged_hash(tag: u8, parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(&[tag]);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// What a batch signature is over: the domain tag, the leaf count, the root.
fn batch_root_message(size: u32, root: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(BATCH_ROOT_DOMAIN.len() + 4 + 32);
    m.extend_from_slice(BATCH_ROOT_DOMAIN);
    m.extend_from_slice(&size.to_be_bytes());
    m.extend_from_slice(root);
    m
}

/// The levels of the Merkle tree over `leaves` (non-empty), leaves first, root last.
fn merkle_levels(leaves: Vec<[u8; 32]>) -> Vec<Vec<[u8; 32]>> {
    let mut levels = vec![leaves];
    while levels.last().map_or(0, Vec::len) > 1 {
        let below = levels.last().expect("a level");
        let up = below
            .chunks(2)
            .map(|pair| match pair {
                [l, r] => tagged_hash(NODE_TAG, &[l, r]),
                [single] => *single,
                _ => unreachable!("chunks(2)"),
            })
            .collect();
        levels.push(up);
    }
    levels
}

/// The root that `leaf` at `index` of `size` leaves and its `path` lead to.
///
/// Errors: [`SealError::Format`] when the index is not below the size, the size is 0 or over
/// 4,096, or the path has too few or too many hashes for that position.
fn batch_root(leaf: [u8; 32], proof: &BatchProof) -> Result<[u8; 32], SealError> {
    let (mut index, mut size) = (proof.index, proof.size);
    if size == 0 || size > MAX_BATCH_LEAVES || index >= size {
        return Err(SealError::Format(format!(
            "batch.index {index} / batch.size {size}: the size must be 1 to {MAX_BATCH_LEAVES} and the index below it"
        )));
    }
    let mut path = proof.path.iter().enumerate();
    let mut next = |at: u32| -> Result<[u8; 32], SealError> {
        match path.next() {
            Some((i, h)) => decode_fixed(&format!("batch.path[{i}]"), h),
            None => Err(SealError::Format(format!(
                "batch.path is too short for leaf {at} of {}",
                proof.size
            ))),
        }
    };
    let mut h = leaf;
    while size > 1 {
        if index % 2 == 1 {
            h = tagged_hash(NODE_TAG, &[&next(proof.index)?, &h]);
        } else if index + 1 < size {
            h = tagged_hash(NODE_TAG, &[&h, &next(proof.index)?]);
        }
        index /= 2;
        size = size.div_ceil(2);
    }
    if path.next().is_some() {
        return Err(SealError::Format(format!(
            "batch.path is too long for leaf {} of {}",
            proof.index, proof.size
        )));
    }
    Ok(h)
}

/// The run secret wrapped for one recipient.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WrappedKey {
    /// Key id of the recipient's X25519 public key (16 hex digits).
    pub key_id: String,
    /// The run's X25519 ephemeral public key for this recipient, 32 bytes.
    pub ephemeral_public: String,
    /// AES-256-GCM nonce of `wrapped_key`, 12 bytes.
    pub nonce: String,
    /// The 32-byte run secret under AES-256-GCM with the KEK, tag appended: 48 bytes.
    pub wrapped_key: String,
}

/// A [`WrappedKey`] with its binary fields decoded.
#[derive(Clone, PartialEq, Eq, Hash)]
struct RawWrapped {
    key_id: String,
    ephemeral_public: [u8; 32],
    nonce: [u8; 12],
    wrapped_key: Vec<u8>,
}

impl RawWrapped {
    fn encode(&self) -> WrappedKey {
        WrappedKey {
            key_id: self.key_id.clone(),
            ephemeral_public: BASE64.encode(self.ephemeral_public),
            nonce: BASE64.encode(self.nonce),
            wrapped_key: BASE64.encode(&self.wrapped_key),
        }
    }

    fn decode(index: usize, wrapped: &WrappedKey) -> Result<Self, SealError> {
        let field = |name: &str| format!("recipients[{index}].{name}");
        if !is_key_id(&wrapped.key_id) {
            return Err(SealError::Format(format!(
                "{} is not 16 lowercase hex digits",
                field("key_id")
            )));
        }
        let wrapped_key = decode_var(&field("wrapped_key"), &wrapped.wrapped_key)?;
        if wrapped_key.len() != RUN_SECRET_LEN + TAG_LEN {
            return Err(SealError::Format(format!(
                "{} must be {} bytes, found {}",
                field("wrapped_key"),
                RUN_SECRET_LEN + TAG_LEN,
                wrapped_key.len()
            )));
        }
        Ok(Self {
            key_id: wrapped.key_id.clone(),
            ephemeral_public: decode_fixed(&field("ephemeral_public"), &wrapped.ephemeral_public)?,
            nonce: decode_fixed(&field("nonce"), &wrapped.nonce)?,
            wrapped_key,
        })
    }
}

/// Decodes a base64 field. Errors: [`SealError::Format`] naming the field.
fn decode_var(field: &str, encoded: &str) -> Result<Vec<u8>, SealError> {
    BASE64
        .decode(encoded)
        .map_err(|err| SealError::Format(format!("{field} is not valid base64 ({err})")))
}

/// Decodes a base64 field of exactly `N` bytes. Errors: [`SealError::Format`] naming it.
fn decode_fixed<const N: usize>(field: &str, encoded: &str) -> Result<[u8; N], SealError> {
    let bytes = decode_var(field, encoded)?;
    let len = bytes.len();
    <[u8; N]>::try_from(bytes)
        .map_err(|_| SealError::Format(format!("{field} must be {N} bytes, found {len}")))
}

/// The fields the signature covers, decoded.
struct SignedFields<'a> {
    version: u32,
    report_id: &'a str,
    run_id: &'a str,
    signer_key_id: &'a str,
    signer_public_key: &'a [u8; 32],
    recipients: &'a [RawWrapped],
    nonce: &'a [u8; 12],
    ciphertext: &'a [u8],
}

/// The bytes the Ed25519 signature is over: a tag and the SHA-256 digest of every field as a u64 big-endian length and its
/// bytes (binary fields decoded), in envelope order, after a domain tag; the version and the
/// recipient count as u32 big-endian. No two different envelopes encode the same.
fn signed_bytes(fields: &SignedFields<'_>) -> Vec<u8> {
    // The encoding is hashed as it is produced, never gathered in one buffer (the ciphertext
    // was copied once more for it, per report).
    fn put(ctx: &mut ring::digest::Context, bytes: &[u8]) {
        ctx.update(&(bytes.len() as u64).to_be_bytes());
        ctx.update(bytes);
    }
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    put(&mut ctx, SIGNATURE_DOMAIN);
    ctx.update(&fields.version.to_be_bytes());
    put(&mut ctx, fields.report_id.as_bytes());
    put(&mut ctx, fields.run_id.as_bytes());
    put(&mut ctx, fields.signer_key_id.as_bytes());
    put(&mut ctx, fields.signer_public_key);
    // A count that does not fit in u32 cannot be signed distinctly; saturating keeps the
    // encoding total, and the per-entry length prefixes still keep it unambiguous.
    let count = u32::try_from(fields.recipients.len()).unwrap_or(u32::MAX);
    ctx.update(&count.to_be_bytes());
    for recipient in fields.recipients {
        put(&mut ctx, recipient.key_id.as_bytes());
        put(&mut ctx, &recipient.ephemeral_public);
        put(&mut ctx, &recipient.nonce);
        put(&mut ctx, &recipient.wrapped_key);
    }
    put(&mut ctx, fields.nonce);
    put(&mut ctx, fields.ciphertext);
    // Ed25519 hashes its message twice with SHA-512 (no hardware path here): signing the
    // SHA-256 digest of the encoding (hardware-accelerated, one pass) instead of the whole
    // ciphertext keeps the signature's cost flat in the report's size. The digest commits to
    // every field exactly as the encoding does.
    let digest = ctx.finish();
    let mut message = Vec::with_capacity(SIGNATURE_PREHASH.len() + 32);
    message.extend_from_slice(SIGNATURE_PREHASH);
    message.extend_from_slice(digest.as_ref());
    message
}

/// `KEK = HKDF-SHA256(salt = "hedui-seal-v1", ikm = shared, info = run_id ‖ eph ‖ recipient)`.
fn key_encryption_key(
    shared: &x25519_dalek::SharedSecret,
    run_id: &str,
    ephemeral_public: &[u8; 32],
    recipient_public: &[u8; 32],
) -> Result<LessSafeKey, SealError> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, KEK_SALT).extract(shared.as_bytes());
    let info = [run_id.as_bytes(), ephemeral_public, recipient_public];
    let okm = prk
        .expand(&info, &aead::AES_256_GCM)
        .map_err(|_| SealError::Crypto("HKDF expansion of the key-encryption key failed".into()))?;
    Ok(LessSafeKey::new(UnboundKey::from(okm)))
}

/// The run's HKDF pseudo-random key: `HKDF-Extract(salt = run_id, ikm = run secret)`.
fn run_key(run_id: &str, run_secret: &[u8]) -> hkdf::Prk {
    hkdf::Salt::new(hkdf::HKDF_SHA256, run_id.as_bytes()).extract(run_secret)
}

/// A report's content key: `HKDF-Expand(run key, info = "report:" ‖ report_id)`.
fn content_key(run_key: &hkdf::Prk, report_id: &str) -> Result<LessSafeKey, SealError> {
    let info = [REPORT_INFO_PREFIX, report_id.as_bytes()];
    let okm = run_key
        .expand(&info, &aead::AES_256_GCM)
        .map_err(|_| SealError::Crypto("HKDF expansion of the content key failed".into()))?;
    Ok(LessSafeKey::new(UnboundKey::from(okm)))
}

/// Best-effort wipe of a secret buffer (no `zeroize` dependency in this module).
fn wipe(buf: &mut [u8]) {
    buf.fill(0);
    std::hint::black_box(&buf);
}

/// Seals the reports of one run: the key agreements are done once, in [`RunSealer::new`];
/// [`RunSealer::seal`] then costs two HMACs, one AES-GCM pass and one Ed25519 signature.
///
/// `Send + Sync`: share one across rayon workers by reference.
pub struct RunSealer {
    run_id: String,
    signer: SigningKey,
    signer_key_id: String,
    signer_public: [u8; 32],
    raw_recipients: Vec<RawWrapped>,
    recipients: Vec<WrappedKey>,
    run_key: hkdf::Prk,
    rng: SystemRandom,
}

impl RunSealer {
    /// One key agreement per run and recipient (DESIGN §4): draws the run secret and, for
    /// each recipient (duplicates dropped, order kept), an ephemeral X25519 key, and wraps
    /// the run secret for it.
    ///
    /// Errors: [`SealError::Crypto`] for no recipients, a low-order (all-zero shared secret)
    /// recipient key, or no system randomness.
    pub fn new(
        signing: &SigningKey,
        recipients: &[RecipientPublicKey],
        run_id: &str,
    ) -> Result<Self, SealError> {
        if recipients.is_empty() {
            return Err(SealError::Crypto(
                "cannot seal to no recipients: nobody could open the reports".into(),
            ));
        }
        let rng = SystemRandom::new();
        let mut run_secret: [u8; RUN_SECRET_LEN] = random_bytes(&rng)?;
        let mut raw_recipients: Vec<RawWrapped> = Vec::with_capacity(recipients.len());
        let mut seen: Vec<&RecipientPublicKey> = Vec::with_capacity(recipients.len());
        for recipient in recipients {
            if seen.contains(&recipient) {
                continue;
            }
            seen.push(recipient);
            let wrapped = wrap_for(&rng, recipient, run_id, &run_secret);
            match wrapped {
                Ok(wrapped) => raw_recipients.push(wrapped),
                Err(err) => {
                    wipe(&mut run_secret);
                    return Err(err);
                }
            }
        }
        let run_key = run_key(run_id, &run_secret);
        wipe(&mut run_secret);
        let verifying = signing.verifying_key();
        Ok(Self {
            run_id: run_id.to_string(),
            signer: signing.clone(),
            signer_key_id: verifying.key_id(),
            signer_public: *verifying.as_bytes(),
            recipients: raw_recipients.iter().map(RawWrapped::encode).collect(),
            raw_recipients,
            run_key,
            rng,
        })
    }

    /// The run id every report of this sealer carries.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Key ids of the recipients, in envelope order.
    pub fn recipient_key_ids(&self) -> Vec<String> {
        self.raw_recipients
            .iter()
            .map(|r| r.key_id.clone())
            .collect()
    }

    /// Encrypts `plaintext` (any bytes, e.g. a report's JSON) under the content key derived
    /// for `report_id`, with `report_id` as AAD, and signs the envelope. Each call draws a
    /// fresh nonce, so sealing the same report twice gives two different envelopes.
    ///
    /// Errors: [`SealError::Crypto`] when randomness or AES-GCM fails.
    pub fn seal(&self, report_id: &str, plaintext: &[u8]) -> Result<SealedReport, SealError> {
        self.seal_content(report_id, compress(plaintext)?, SEAL_VERSION)
    }

    /// Like [`RunSealer::seal`], but the envelope is left for [`RunSealer::sign_batch`]
    /// (version 3): the caller signs many at once.
    ///
    /// Errors: [`SealError::Crypto`] when randomness, LZ4 or AES-GCM fails.
    pub fn seal_unsigned(
        &self,
        report_id: &str,
        plaintext: &[u8],
    ) -> Result<UnsignedReport, SealError> {
        let (envelope, message) =
            self.encrypt(report_id, compress(plaintext)?, SEAL_VERSION_BATCH)?;
        Ok(UnsignedReport {
            envelope,
            leaf: tagged_hash(LEAF_TAG, &[&message]),
        })
    }

    /// Signs `batch` (1 to 4,096 envelopes from [`RunSealer::seal_unsigned`]) with one
    /// Ed25519 signature over their Merkle root, and gives each its inclusion proof; the
    /// envelopes come back in the order given, each one verifiable and openable on its own.
    ///
    /// # Panics
    /// When `batch` is empty or longer than 4,096 (a caller's error, not input's).
    pub fn sign_batch(&self, batch: Vec<UnsignedReport>) -> Vec<SealedReport> {
        let size = u32::try_from(batch.len())
            .ok()
            .filter(|n| (1..=MAX_BATCH_LEAVES).contains(n))
            .expect("a batch of 1 to 4,096 envelopes");
        let (envelopes, leaves): (Vec<SealedReport>, Vec<[u8; 32]>) =
            batch.into_iter().map(|u| (u.envelope, u.leaf)).unzip();
        let levels = merkle_levels(leaves);
        let root = levels.last().expect("a root")[0];
        let signature = BASE64.encode(self.signer.sign(&batch_root_message(size, &root)));
        envelopes
            .into_iter()
            .enumerate()
            .map(|(i, mut e)| {
                let mut path = Vec::with_capacity(levels.len());
                let mut at = i;
                for level in &levels[..levels.len() - 1] {
                    if let Some(sibling) = level.get(at ^ 1) {
                        path.push(BASE64.encode(sibling));
                    }
                    at /= 2;
                }
                e.signature = signature.clone();
                e.batch = Some(BatchProof {
                    index: i as u32,
                    size,
                    path,
                });
                e
            })
            .collect()
    }

    /// Encrypt `content` (the plaintext as `version` frames it) and sign the envelope.
    fn seal_content(
        &self,
        report_id: &str,
        ciphertext: Vec<u8>,
        version: u32,
    ) -> Result<SealedReport, SealError> {
        let (mut envelope, message) = self.encrypt(report_id, ciphertext, version)?;
        envelope.signature = BASE64.encode(self.signer.sign(&message));
        Ok(envelope)
    }

    /// Encrypt `content` under `report_id`'s key: the envelope without its signature, and the
    /// message a signature covers ([`signed_bytes`]).
    fn encrypt(
        &self,
        report_id: &str,
        mut ciphertext: Vec<u8>,
        version: u32,
    ) -> Result<(SealedReport, Vec<u8>), SealError> {
        let key = content_key(&self.run_key, report_id)?;
        let nonce: [u8; 12] = random_bytes(&self.rng)?;
        ciphertext.reserve(TAG_LEN);
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(report_id.as_bytes()),
            &mut ciphertext,
        )
        .map_err(|_| SealError::Crypto("AES-256-GCM sealing failed".into()))?;
        let message = signed_bytes(&SignedFields {
            version,
            report_id,
            run_id: &self.run_id,
            signer_key_id: &self.signer_key_id,
            signer_public_key: &self.signer_public,
            recipients: &self.raw_recipients,
            nonce: &nonce,
            ciphertext: &ciphertext,
        });
        Ok((
            SealedReport {
                version,
                report_id: report_id.to_string(),
                run_id: self.run_id.clone(),
                signer_key_id: self.signer_key_id.clone(),
                signer_public_key: BASE64.encode(self.signer_public),
                recipients: self.recipients.clone(),
                nonce: BASE64.encode(nonce),
                ciphertext: BASE64.encode(&ciphertext),
                signature: String::new(),
                batch: None,
            },
            message,
        ))
    }
}

impl fmt::Debug for RunSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunSealer")
            .field("run_id", &self.run_id)
            .field("signer_key_id", &self.signer_key_id)
            .field("recipients", &self.recipient_key_ids())
            .finish_non_exhaustive()
    }
}

/// The plaintext of a version-2 envelope: the report's length as a u32 little-endian and
/// its LZ4 block (`lz4::block`, default mode). Reports repeat their rule clauses and column
/// names, so this roughly halves them (about 2.3x on a county's reports) at ~1 GB/s.
///
/// Errors: [`SealError::Crypto`] for a plaintext over 2 GiB (LZ4's limit).
fn compress(plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
    lz4::block::compress(plaintext, None, true)
        .map_err(|e| SealError::Crypto(format!("LZ4 compression of the report failed: {e}")))
}

/// Inverse of [`compress`], on the authenticated plaintext of a version-2 envelope.
///
/// Errors: [`SealError::Format`] when the length prefix is missing or over
/// [`MAX_PLAINTEXT`], or the block does not decompress to exactly that length.
fn decompress(data: &[u8]) -> Result<Vec<u8>, SealError> {
    let bad = |m: &str| SealError::Format(format!("the sealed report's compressed content {m}"));
    let (prefix, block) = data
        .split_first_chunk::<4>()
        .ok_or_else(|| bad("has no length prefix"))?;
    let len = u32::from_le_bytes(*prefix) as usize;
    if len > MAX_PLAINTEXT {
        return Err(bad(&format!(
            "declares {len} bytes, over the limit of {MAX_PLAINTEXT}"
        )));
    }
    let mut out = vec![0u8; len];
    // `len` ≤ 256 MiB fits an i32
    let n = lz4::block::decompress_to_buffer(block, Some(len as i32), &mut out)
        .map_err(|e| bad(&format!("does not decompress: {e}")))?;
    if n != len {
        return Err(bad(&format!(
            "decompresses to {n} bytes, not the {len} it declares"
        )));
    }
    Ok(out)
}

/// One ephemeral key agreement with `recipient`, wrapping `run_secret` for it.
fn wrap_for(
    rng: &SystemRandom,
    recipient: &RecipientPublicKey,
    run_id: &str,
    run_secret: &[u8; RUN_SECRET_LEN],
) -> Result<RawWrapped, SealError> {
    // A StaticSecret used once: x25519-dalek's EphemeralSecret wants a rand_core RNG, and
    // the bytes come from ring's SystemRandom instead. It is zeroed on drop.
    let ephemeral = x25519_dalek::StaticSecret::from(random_bytes::<32>(rng)?);
    let ephemeral_public = x25519_dalek::PublicKey::from(&ephemeral).to_bytes();
    let shared = ephemeral.diffie_hellman(&x25519_dalek::PublicKey::from(*recipient.as_bytes()));
    if !shared.was_contributory() {
        return Err(SealError::Crypto(format!(
            "recipient key {} is a low-order point; refusing to seal to it",
            recipient.key_id()
        )));
    }
    let kek = key_encryption_key(&shared, run_id, &ephemeral_public, recipient.as_bytes())?;
    let nonce: [u8; 12] = random_bytes(rng)?;
    let mut wrapped_key = Vec::with_capacity(RUN_SECRET_LEN + TAG_LEN);
    wrapped_key.extend_from_slice(run_secret);
    kek.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(run_id.as_bytes()),
        &mut wrapped_key,
    )
    .map_err(|_| SealError::Crypto("AES-256-GCM key wrapping failed".into()))?;
    Ok(RawWrapped {
        key_id: recipient.key_id(),
        ephemeral_public,
        nonce,
        wrapped_key,
    })
}

/// The run secret's cache key: everything the unwrap depends on besides the private key.
type RunCacheKey = (String, RawWrapped);

/// Opens sealed reports with one recipient private key.
///
/// Caches the unwrapped run secret (as its HKDF key) per run id and wrapped-key entry
/// (ephemeral key, nonce, wrapped bytes), so the reports of one run cost one X25519 key
/// agreement in all. `Send + Sync`: share one across rayon workers by reference.
pub struct Opener {
    key: RecipientPrivateKey,
    public: RecipientPublicKey,
    key_id: String,
    trusted_signer: Option<VerifyingKey>,
    runs: RwLock<HashMap<RunCacheKey, hkdf::Prk>>,
    agreements: AtomicU64,
    /// Batch signatures already verified (a hash of signer, signature and signed root).
    verified_roots: RwLock<std::collections::HashSet<[u8; 32]>>,
    signature_checks: AtomicU64,
}

impl Opener {
    /// An opener for `key`. With `trusted_signer`, only reports signed by that key open;
    /// without, the report's embedded signer key is used (integrity, not authenticity).
    pub fn new(key: RecipientPrivateKey, trusted_signer: Option<VerifyingKey>) -> Self {
        let public = key.public();
        Self {
            key_id: public.key_id(),
            public,
            key,
            trusted_signer,
            runs: RwLock::new(HashMap::new()),
            agreements: AtomicU64::new(0),
            verified_roots: RwLock::new(Default::default()),
            signature_checks: AtomicU64::new(0),
        }
    }

    /// Key id of this opener's recipient key.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// How many X25519 key agreements this opener has done (for tests and metrics).
    pub fn key_agreements(&self) -> u64 {
        self.agreements.load(Ordering::Relaxed)
    }

    /// How many Ed25519 signatures this opener has checked: one per version-1/2 envelope,
    /// one per batch of version-3 envelopes (for tests and metrics).
    pub fn signature_checks(&self) -> u64 {
        self.signature_checks.load(Ordering::Relaxed)
    }

    /// Check `signature` over `message` with `key`, counted in [`Opener::signature_checks`].
    fn check_signature(&self, key: &VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
        self.signature_checks.fetch_add(1, Ordering::Relaxed);
        key.verifies(message, signature)
    }

    /// Verify the signature (against trusted_signer if given, else the embedded key), find
    /// this key's WrappedKey, unwrap, derive, decrypt. Returns the plaintext bytes.
    ///
    /// Errors, in the order checked:
    /// - [`SealError::Format`]: unknown version, bad base64, a wrong length, a malformed
    ///   key id, no recipients (the fields must decode before the signature can be checked);
    /// - [`SealError::Tampered`]: the signature does not verify;
    /// - [`SealError::UntrustedSigner`]: it verifies, but not under the trusted signer;
    /// - [`SealError::Format`]: `signer_key_id` is not the id of `signer_public_key`;
    /// - [`SealError::WrongKey`]: no entry for this key;
    /// - [`SealError::Tampered`]: the wrapped key or the ciphertext does not authenticate.
    pub fn open(&self, sealed: &SealedReport) -> Result<Vec<u8>, SealError> {
        if ![SEAL_VERSION_UNCOMPRESSED, SEAL_VERSION, SEAL_VERSION_BATCH].contains(&sealed.version)
        {
            return Err(SealError::Format(format!(
                "sealed report version {} is not supported; this build reads versions {SEAL_VERSION_UNCOMPRESSED} to {SEAL_VERSION_BATCH}",
                sealed.version
            )));
        }
        match (&sealed.batch, sealed.version == SEAL_VERSION_BATCH) {
            (None, true) => {
                return Err(SealError::Format(
                    "a version-3 sealed report needs its batch proof (batch)".into(),
                ));
            }
            (Some(_), false) => {
                return Err(SealError::Format(format!(
                    "a version-{} sealed report has no batch proof, but batch is present",
                    sealed.version
                )));
            }
            _ => {}
        }
        let signer_public: [u8; 32] = decode_fixed("signer_public_key", &sealed.signer_public_key)?;
        let signature: [u8; 64] = decode_fixed("signature", &sealed.signature)?;
        let nonce: [u8; 12] = decode_fixed("nonce", &sealed.nonce)?;
        let ciphertext = decode_var("ciphertext", &sealed.ciphertext)?;
        if ciphertext.len() < TAG_LEN {
            return Err(SealError::Format(format!(
                "ciphertext must be at least {TAG_LEN} bytes, found {}",
                ciphertext.len()
            )));
        }
        if sealed.recipients.is_empty() {
            return Err(SealError::Format("recipients is empty".into()));
        }
        let recipients = sealed
            .recipients
            .iter()
            .enumerate()
            .map(|(index, wrapped)| RawWrapped::decode(index, wrapped))
            .collect::<Result<Vec<_>, _>>()?;

        // The signature first: nothing below runs on bytes that hedui did not sign.
        let message = signed_bytes(&SignedFields {
            version: sealed.version,
            report_id: &sealed.report_id,
            run_id: &sealed.run_id,
            signer_key_id: &sealed.signer_key_id,
            signer_public_key: &signer_public,
            recipients: &recipients,
            nonce: &nonce,
            ciphertext: &ciphertext,
        });
        let embedded = VerifyingKey::from_bytes(signer_public);
        let verified = match &sealed.batch {
            None => {
                self.signature_checks.fetch_add(1, Ordering::Relaxed);
                embedded.verifies(&message, &signature)
            }
            Some(proof) => {
                let root = batch_root(tagged_hash(LEAF_TAG, &[&message]), proof)?;
                let signed = batch_root_message(proof.size, &root);
                // The batch's other envelopes carry the same root and signature: verify it once.
                let seen = tagged_hash(LEAF_TAG, &[&signer_public, &signature, &signed]);
                if self
                    .verified_roots
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .contains(&seen)
                {
                    true
                } else if self.check_signature(&embedded, &signed, &signature) {
                    let mut roots = self
                        .verified_roots
                        .write()
                        .unwrap_or_else(PoisonError::into_inner);
                    if roots.len() >= MAX_CACHED_ROOTS {
                        roots.clear();
                    }
                    roots.insert(seen);
                    true
                } else {
                    false
                }
            }
        };
        if !verified {
            return Err(SealError::Tampered("the signature does not verify".into()));
        }
        // Whom it is sealed to comes before whom it is signed by: opening with the wrong private
        // key (whose folder holds another signer's public key) says "wrong key", the real cause.
        let mine: Vec<&RawWrapped> = recipients
            .iter()
            .filter(|r| r.key_id == self.key_id)
            .collect();
        if mine.is_empty() {
            return Err(SealError::WrongKey {
                key_id: self.key_id.clone(),
                sealed_to: recipients.iter().map(|r| r.key_id.clone()).collect(),
            });
        }
        if let Some(trusted) = &self.trusted_signer
            && *trusted != embedded
        {
            return Err(SealError::UntrustedSigner {
                expected: trusted.key_id(),
                found: embedded.key_id(),
            });
        }

        // Signed, so only a faulty or foreign signer can get this wrong.
        let signer_key_id = key_id_of(&signer_public);
        if sealed.signer_key_id != signer_key_id {
            return Err(SealError::Format(format!(
                "signer_key_id {:?} is not the key id of signer_public_key ({signer_key_id})",
                sealed.signer_key_id
            )));
        }

        // Normally one entry; more only if two recipient keys share a 64-bit key id.
        let mut last_error = None;
        for entry in mine {
            match self.run_key_for(&sealed.run_id, entry) {
                Ok(run_key) => {
                    let key = content_key(&run_key, &sealed.report_id)?;
                    let mut buf = ciphertext;
                    let plaintext = key
                        .open_in_place(
                            Nonce::assume_unique_for_key(nonce),
                            Aad::from(sealed.report_id.as_bytes()),
                            &mut buf,
                        )
                        .map_err(|_| {
                            SealError::Tampered("the ciphertext does not authenticate".into())
                        })?;
                    let len = plaintext.len();
                    buf.truncate(len);
                    // the version is signed: a compressed envelope cannot pass for version 1
                    if sealed.version != SEAL_VERSION_UNCOMPRESSED {
                        return decompress(&buf);
                    }
                    return Ok(buf);
                }
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.unwrap_or_else(|| SealError::Crypto("no wrapped key was tried".into())))
    }

    /// The run's HKDF key for `entry`: from the cache, or by one key agreement and unwrap.
    fn run_key_for(&self, run_id: &str, entry: &RawWrapped) -> Result<hkdf::Prk, SealError> {
        let cache_key: RunCacheKey = (run_id.to_string(), entry.clone());
        // The cache holds only complete entries, so a poisoned lock's data is still good.
        if let Some(prk) = self
            .runs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&cache_key)
        {
            return Ok(prk.clone());
        }
        let prk = self.unwrap_run_key(run_id, entry)?;
        let mut runs = self.runs.write().unwrap_or_else(PoisonError::into_inner);
        if runs.len() >= MAX_CACHED_RUNS {
            runs.clear();
        }
        runs.insert(cache_key, prk.clone());
        Ok(prk)
    }

    /// One X25519 agreement with the entry's ephemeral key, KEK derivation and unwrap.
    fn unwrap_run_key(&self, run_id: &str, entry: &RawWrapped) -> Result<hkdf::Prk, SealError> {
        self.agreements.fetch_add(1, Ordering::Relaxed);
        let shared = self.key.diffie_hellman(&entry.ephemeral_public);
        if !shared.was_contributory() {
            return Err(SealError::Format(format!(
                "the ephemeral key for recipient {} is a low-order point",
                entry.key_id
            )));
        }
        let kek = key_encryption_key(
            &shared,
            run_id,
            &entry.ephemeral_public,
            self.public.as_bytes(),
        )?;
        let mut buf = entry.wrapped_key.clone();
        let opened = kek.open_in_place(
            Nonce::assume_unique_for_key(entry.nonce),
            Aad::from(run_id.as_bytes()),
            &mut buf,
        );
        let result = match opened {
            Ok(secret) if secret.len() == RUN_SECRET_LEN => Ok(run_key(run_id, secret)),
            Ok(secret) => Err(SealError::Format(format!(
                "the wrapped run secret is {} bytes, not {RUN_SECRET_LEN}",
                secret.len()
            ))),
            Err(_) => Err(SealError::Tampered(format!(
                "the wrapped key for recipient {} does not authenticate",
                entry.key_id
            ))),
        };
        wipe(&mut buf);
        result
    }
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opener")
            .field("key_id", &self.key_id)
            .field(
                "trusted_signer",
                &self.trusted_signer.as_ref().map(VerifyingKey::key_id),
            )
            .field("key_agreements", &self.key_agreements())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        civil: RecipientPrivateKey,
        audit: RecipientPrivateKey,
        signing: SigningKey,
        sealer: RunSealer,
    }

    fn fixture() -> Fixture {
        let civil = RecipientPrivateKey::generate().unwrap();
        let audit = RecipientPrivateKey::generate().unwrap();
        let signing = SigningKey::generate().unwrap();
        let sealer = RunSealer::new(
            &signing,
            &[civil.public(), audit.public()],
            "run-2024-06-01",
        )
        .unwrap();
        Fixture {
            civil,
            audit,
            signing,
            sealer,
        }
    }

    /// `n` reports "H0".."H{n-1}" sealed unsigned and signed as one batch.
    fn batch_of(f: &Fixture, n: usize) -> Vec<SealedReport> {
        f.sealer.sign_batch(
            (0..n)
                .map(|i| {
                    f.sealer
                        .seal_unsigned(&format!("H{i}"), format!("report {i}").as_bytes())
                        .unwrap()
                })
                .collect(),
        )
    }

    #[test]
    fn an_envelope_line_is_what_serde_json_writes() {
        let f = fixture();
        let mut batch = batch_of(&f, 5);
        // unsigned (version 2, no batch proof)
        batch.push(f.sealer.seal("H5", b"report 5").unwrap());
        // fields that need escaping: a quote, a backslash, a control character, non-ASCII
        let mut odd = batch[0].clone();
        odd.report_id = "H\"6\\\u{1}/甘".into();
        odd.run_id = "run\n\t\u{7f}\u{2028}".into();
        odd.recipients[0].key_id = "k\"1".into();
        odd.batch.as_mut().unwrap().path.push("a\"b".into());
        batch.push(odd);
        for e in &batch {
            let line = e.to_json_line();
            assert_eq!(line, serde_json::to_string(e).unwrap());
            assert_eq!(e.to_json_bytes(), line.as_bytes());
            assert_eq!(&serde_json::from_str::<SealedReport>(&line).unwrap(), e);
        }
        assert!(batch[5].batch.is_none() && batch[0].batch.is_some());
    }

    #[test]
    fn every_envelope_of_a_batch_opens_on_its_own_with_one_signature_check_per_batch() {
        let f = fixture();
        for n in [1usize, 2, 3, 5, 8, 9, 31, 32] {
            let batch = batch_of(&f, n);
            assert_eq!(batch.len(), n);
            let sig = &batch[0].signature;
            // the proof has one hash per level where the node has a sibling
            let depth = (n as f64).log2().ceil() as usize;
            for (i, e) in batch.iter().enumerate() {
                assert_eq!(e.version, SEAL_VERSION_BATCH);
                assert_eq!(&e.signature, sig, "one signature per batch");
                let proof = e.batch.as_ref().unwrap();
                assert_eq!((proof.index as usize, proof.size as usize), (i, n));
                assert!(
                    proof.path.len() <= depth,
                    "n {n} i {i}: {}",
                    proof.path.len()
                );
                // each alone, through a fresh opener (the trusted signer given)
                let alone = Opener::new(f.civil.clone(), Some(f.signing.verifying_key()));
                assert_eq!(alone.open(e).unwrap(), format!("report {i}").as_bytes());
                assert_eq!(alone.signature_checks(), 1);
            }
            let shared = Opener::new(f.audit.clone(), None);
            for (i, e) in batch.iter().enumerate() {
                assert_eq!(shared.open(e).unwrap(), format!("report {i}").as_bytes());
            }
            assert_eq!(
                shared.signature_checks(),
                1,
                "n {n}: verified once for the batch"
            );
        }
        // 9 leaves: the last has no sibling on the two lowest levels, so one hash
        let nine = batch_of(&f, 9);
        assert_eq!(nine[8].batch.as_ref().unwrap().path.len(), 1);
        assert_eq!(nine[0].batch.as_ref().unwrap().path.len(), 4);
    }

    #[test]
    fn a_changed_or_moved_batch_proof_does_not_open() {
        let f = fixture();
        let batch = batch_of(&f, 5);
        let opener = Opener::new(f.civil.clone(), None);
        let with = |e: &SealedReport, proof: BatchProof| SealedReport {
            batch: Some(proof),
            ..e.clone()
        };
        let p = batch[2].batch.clone().unwrap();
        // another position, or a sibling hash changed: the root differs, the signature fails
        for proof in [
            BatchProof {
                index: 3,
                ..p.clone()
            },
            BatchProof {
                path: vec![p.path[1].clone(), p.path[0].clone(), p.path[2].clone()],
                ..p.clone()
            },
            BatchProof {
                path: {
                    let mut path = p.path.clone();
                    path[0] = BASE64.encode([7u8; 32]);
                    path
                },
                ..p.clone()
            },
        ] {
            let err = assert_fails(&opener, &with(&batch[2], proof.clone()), "moved");
            assert!(matches!(err, SealError::Tampered(_)), "{proof:?}: {err}");
        }
        // another envelope's proof and content under this one's signature
        let swapped = SealedReport {
            ciphertext: batch[1].ciphertext.clone(),
            ..batch[2].clone()
        };
        assert!(matches!(
            assert_fails(&opener, &swapped, "swapped"),
            SealError::Tampered(_)
        ));
        // a batch of another signing: the same positions, another signature
        let other = batch_of(&f, 5);
        let foreign = SealedReport {
            signature: other[2].signature.clone(),
            ..batch[2].clone()
        };
        assert!(matches!(
            assert_fails(&opener, &foreign, "foreign"),
            SealError::Tampered(_)
        ));
        // shapes a reader refuses before hashing
        for (proof, says) in [
            (
                BatchProof {
                    index: 5,
                    ..p.clone()
                },
                "index 5 / batch.size 5",
            ),
            (
                BatchProof {
                    size: 0,
                    index: 0,
                    ..p.clone()
                },
                "batch.size 0",
            ),
            (
                BatchProof {
                    size: 5000,
                    ..p.clone()
                },
                "batch.size 5000",
            ),
            (
                BatchProof {
                    path: p.path[..2].to_vec(),
                    ..p.clone()
                },
                "too short",
            ),
            (
                BatchProof {
                    path: [p.path.clone(), vec![p.path[0].clone()]].concat(),
                    ..p.clone()
                },
                "too long",
            ),
            (
                BatchProof {
                    path: vec!["x".into(), p.path[1].clone(), p.path[2].clone()],
                    ..p.clone()
                },
                "batch.path[0]",
            ),
        ] {
            match assert_fails(&opener, &with(&batch[2], proof), says) {
                SealError::Format(m) => assert!(m.contains(says), "{m}"),
                other => panic!("{says}: {other}"),
            }
        }
        // the version says whether a proof belongs
        let no_proof = SealedReport {
            batch: None,
            ..batch[2].clone()
        };
        assert!(
            matches!(assert_fails(&opener, &no_proof, "v3 bare"), SealError::Format(m) if m.contains("needs its batch proof"))
        );
        let single = f.sealer.seal("H9", PLAINTEXT).unwrap();
        let v2_with = SealedReport {
            batch: Some(p),
            ..single
        };
        assert!(
            matches!(assert_fails(&opener, &v2_with, "v2 proof"), SealError::Format(m) if m.contains("batch is present"))
        );
        // and the version is signed: a version-3 envelope relabelled 2 (proof dropped) fails
        let relabelled = SealedReport {
            version: SEAL_VERSION,
            batch: None,
            ..batch[2].clone()
        };
        assert!(matches!(
            assert_fails(&opener, &relabelled, "relabelled"),
            SealError::Tampered(_)
        ));
        // the untouched envelope still opens
        assert_eq!(opener.open(&batch[2]).unwrap(), b"report 2");
    }

    #[test]
    fn a_batch_envelope_round_trips_through_json_and_a_single_one_has_no_batch_field() {
        let f = fixture();
        let batch = batch_of(&f, 3);
        let text = serde_json::to_string(&batch[1]).unwrap();
        assert!(
            text.contains(r#""batch":{"index":1,"size":3,"path":["#),
            "{text}"
        );
        let back: SealedReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, batch[1]);
        let single = serde_json::to_string(&f.sealer.seal("H1", PLAINTEXT).unwrap()).unwrap();
        assert!(!single.contains("batch"), "{single}");
    }

    const PLAINTEXT: &[u8] = br#"{"household_id":"H1","determination":"eligible"}"#;

    /// Asserts that `sealed` does not open: an error, never a plaintext.
    fn assert_fails(opener: &Opener, sealed: &SealedReport, what: &str) -> SealError {
        match opener.open(sealed) {
            Ok(plaintext) => panic!(
                "{what}: opened to {:?}",
                String::from_utf8_lossy(&plaintext)
            ),
            Err(err) => err,
        }
    }

    fn flip_bits_of_base64(encoded: &str, mut each: impl FnMut(String)) {
        let bytes = BASE64.decode(encoded).unwrap();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut changed = bytes.clone();
                changed[i] ^= 1 << bit;
                each(BASE64.encode(&changed));
            }
        }
    }

    fn flip_chars(s: &str, mut each: impl FnMut(String)) {
        let bytes = s.as_bytes();
        for i in 0..bytes.len() {
            let mut changed = bytes.to_vec();
            changed[i] ^= 0x01;
            if let Ok(changed) = String::from_utf8(changed) {
                each(changed);
            }
        }
        each(format!("{s}x"));
        if !s.is_empty() {
            each(s[..s.len() - 1].to_string());
        }
    }

    #[test]
    fn a_report_sealed_to_two_recipients_opens_with_either_key() {
        let f = fixture();
        let sealed = f.sealer.seal("H1", PLAINTEXT).unwrap();
        assert_eq!(sealed.version, SEAL_VERSION);
        assert_eq!(sealed.recipients.len(), 2);
        assert_eq!(sealed.signer_key_id, f.signing.key_id());
        for key in [&f.civil, &f.audit] {
            let opener = Opener::new(key.clone(), Some(f.signing.verifying_key()));
            assert_eq!(opener.open(&sealed).unwrap(), PLAINTEXT);
        }
    }

    #[test]
    fn an_envelope_survives_a_json_round_trip_and_opens_on_its_own() {
        let f = fixture();
        let json = serde_json::to_string(&f.sealer.seal("H1", PLAINTEXT).unwrap()).unwrap();
        drop(f.sealer);
        let sealed: SealedReport = serde_json::from_str(&json).unwrap();
        let opener = Opener::new(f.civil, None);
        assert_eq!(opener.open(&sealed).unwrap(), PLAINTEXT);
    }

    /// `hedui serve` seals every report of a sealing run (an hour) under one key agreement
    /// per recipient: two reports of one run, each stored as JSON, open on their own (a
    /// fresh opener each, holding only the recipient key), and tampering with one's
    /// ciphertext fails that one only.
    #[test]
    fn two_reports_of_one_serve_run_open_independently_and_a_tampered_one_fails() {
        let f = fixture();
        let sealer = RunSealer::new(
            &f.signing,
            &[f.civil.public()],
            "serve-20261130T050000Z-0a1b2c3d",
        )
        .unwrap();
        let one = serde_json::to_string(
            &sealer
                .seal(
                    "v_0123456789abcdef01234567/H1",
                    b"{\"household_id\":\"H1\"}",
                )
                .unwrap(),
        )
        .unwrap();
        let two = serde_json::to_string(
            &sealer
                .seal(
                    "v_89abcdef0123456789abcdef/H2",
                    b"{\"household_id\":\"H2\"}",
                )
                .unwrap(),
        )
        .unwrap();
        drop(sealer);
        let fresh = || Opener::new(f.civil.clone(), Some(f.signing.verifying_key()));
        let (one, two): (SealedReport, SealedReport) = (
            serde_json::from_str(&one).unwrap(),
            serde_json::from_str(&two).unwrap(),
        );
        assert_eq!(one.run_id, two.run_id);
        assert_eq!(fresh().open(&two).unwrap(), b"{\"household_id\":\"H2\"}");
        assert_eq!(fresh().open(&one).unwrap(), b"{\"household_id\":\"H1\"}");
        let mut ct = BASE64.decode(&one.ciphertext).unwrap();
        ct[0] ^= 1;
        let tampered = SealedReport {
            ciphertext: BASE64.encode(ct),
            ..one.clone()
        };
        let opener = fresh();
        let err = assert_fails(&opener, &tampered, "tampered ciphertext");
        assert!(matches!(err, SealError::Tampered(_)), "{err:?}");
        assert_eq!(opener.open(&two).unwrap(), b"{\"household_id\":\"H2\"}");
        assert_eq!(opener.open(&one).unwrap(), b"{\"household_id\":\"H1\"}");
    }

    #[test]
    fn an_empty_plaintext_and_an_empty_report_id_round_trip() {
        let f = fixture();
        let sealed = f.sealer.seal("", b"").unwrap();
        let opener = Opener::new(f.civil, None);
        assert_eq!(opener.open(&sealed).unwrap(), b"");
    }

    #[test]
    fn opening_with_a_key_it_is_not_sealed_to_is_wrong_key_naming_both() {
        let f = fixture();
        let sealed = f.sealer.seal("H1", PLAINTEXT).unwrap();
        let stranger = RecipientPrivateKey::generate().unwrap();
        // The stranger's own folder trusts another signer: the answer is still "wrong key".
        let other_signer = SigningKey::generate().unwrap().verifying_key();
        let err = assert_fails(
            &Opener::new(stranger.clone(), Some(other_signer)),
            &sealed,
            "stranger",
        );
        match &err {
            SealError::WrongKey { key_id, sealed_to } => {
                assert_eq!(*key_id, stranger.key_id());
                assert_eq!(*sealed_to, vec![f.civil.key_id(), f.audit.key_id()]);
            }
            other => panic!("expected WrongKey, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!(
                "this report is not sealed to key {}; it is sealed to {}",
                stranger.key_id(),
                f.civil.key_id()
            )),
            "{msg}"
        );
    }

    #[test]
    fn flipping_any_bit_of_any_binary_field_makes_open_fail() {
        let f = fixture();
        let sealed = f.sealer.seal("H1", b"tiny").unwrap();
        let opener = Opener::new(f.civil, None);
        let mut cases = 0;
        let mut check = |changed: SealedReport, what: &str| {
            cases += 1;
            let err = assert_fails(&opener, &changed, what);
            assert!(
                matches!(err, SealError::Tampered(_) | SealError::Format(_)),
                "{what}: {err:?}"
            );
        };
        flip_bits_of_base64(&sealed.signer_public_key, |v| {
            check(
                SealedReport {
                    signer_public_key: v,
                    ..sealed.clone()
                },
                "signer_public_key",
            )
        });
        flip_bits_of_base64(&sealed.nonce, |v| {
            check(
                SealedReport {
                    nonce: v,
                    ..sealed.clone()
                },
                "nonce",
            )
        });
        flip_bits_of_base64(&sealed.ciphertext, |v| {
            check(
                SealedReport {
                    ciphertext: v,
                    ..sealed.clone()
                },
                "ciphertext",
            )
        });
        flip_bits_of_base64(&sealed.signature, |v| {
            check(
                SealedReport {
                    signature: v,
                    ..sealed.clone()
                },
                "signature",
            )
        });
        for i in 0..sealed.recipients.len() {
            let with = |wrapped: WrappedKey| {
                let mut changed = sealed.clone();
                changed.recipients[i] = wrapped;
                changed
            };
            let entry = &sealed.recipients[i];
            flip_bits_of_base64(&entry.ephemeral_public, |v| {
                check(
                    with(WrappedKey {
                        ephemeral_public: v,
                        ..entry.clone()
                    }),
                    "ephemeral_public",
                )
            });
            flip_bits_of_base64(&entry.nonce, |v| {
                check(
                    with(WrappedKey {
                        nonce: v,
                        ..entry.clone()
                    }),
                    "recipient nonce",
                )
            });
            flip_bits_of_base64(&entry.wrapped_key, |v| {
                check(
                    with(WrappedKey {
                        wrapped_key: v,
                        ..entry.clone()
                    }),
                    "wrapped_key",
                )
            });
        }
        // ciphertext: "tiny" as a length prefix (4) and an LZ4 block (token + 4 literals), and the tag
        assert_eq!(
            cases,
            8 * (32 + 12 + (4 + 5 + 16) + 64 + 2 * (32 + 12 + 48))
        );
    }

    #[test]
    fn changing_any_string_field_makes_open_fail() {
        let f = fixture();
        let sealed = f.sealer.seal("H1", b"tiny").unwrap();
        let opener = Opener::new(f.civil, None);
        let check = |changed: SealedReport, what: &str| {
            if changed == sealed {
                return;
            }
            let err = assert_fails(&opener, &changed, what);
            assert!(
                matches!(
                    err,
                    SealError::Tampered(_) | SealError::Format(_) | SealError::WrongKey { .. }
                ),
                "{what}: {err:?}"
            );
        };
        flip_chars(&sealed.report_id, |v| {
            check(
                SealedReport {
                    report_id: v,
                    ..sealed.clone()
                },
                "report_id",
            )
        });
        flip_chars(&sealed.run_id, |v| {
            check(
                SealedReport {
                    run_id: v,
                    ..sealed.clone()
                },
                "run_id",
            )
        });
        flip_chars(&sealed.signer_key_id, |v| {
            check(
                SealedReport {
                    signer_key_id: v,
                    ..sealed.clone()
                },
                "signer_key_id",
            )
        });
        for i in 0..sealed.recipients.len() {
            flip_chars(&sealed.recipients[i].key_id, |v| {
                let mut changed = sealed.clone();
                changed.recipients[i].key_id = v;
                check(changed, "key_id")
            });
        }
        for version in [0, 2, u32::MAX] {
            check(
                SealedReport {
                    version,
                    ..sealed.clone()
                },
                "version",
            );
        }
    }

    #[test]
    fn flipping_any_byte_of_the_serialized_json_never_opens() {
        let f = fixture();
        let sealed = f.sealer.seal("H1", b"tiny").unwrap();
        let json = serde_json::to_vec(&sealed).unwrap();
        let original: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let opener = Opener::new(f.civil, Some(f.signing.verifying_key()));
        let mut opened_attempts = 0;
        for i in 0..json.len() {
            for mask in [0x01u8, 0x20, 0x80] {
                let mut changed = json.clone();
                changed[i] ^= mask;
                let Ok(value) = serde_json::from_slice::<serde_json::Value>(&changed) else {
                    continue; // Not JSON any more: rejected before opening.
                };
                if value == original {
                    continue; // Same parsed value (cannot happen in compact JSON, but legal).
                }
                let Ok(report) = serde_json::from_value::<SealedReport>(value) else {
                    continue; // Unknown or missing field, wrong type: rejected by serde.
                };
                opened_attempts += 1;
                assert_fails(&opener, &report, &format!("byte {i} ^ {mask:#04x}"));
            }
        }
        assert!(
            opened_attempts > json.len(),
            "{opened_attempts} of {}",
            json.len()
        );
    }

    #[test]
    fn reordering_adding_or_dropping_recipients_makes_open_fail() {
        let f = fixture();
        let sealed = f.sealer.seal("H1", PLAINTEXT).unwrap();
        let other_run = RunSealer::new(
            &f.signing,
            &[RecipientPrivateKey::generate().unwrap().public()],
            "run-2024-06-01",
        )
        .unwrap()
        .seal("H1", PLAINTEXT)
        .unwrap();
        let opener = Opener::new(f.civil, None);

        let mut reordered = sealed.clone();
        reordered.recipients.reverse();
        let mut dropped = sealed.clone();
        dropped.recipients.pop();
        let mut added = sealed.clone();
        added.recipients.push(other_run.recipients[0].clone());
        let mut none = sealed.clone();
        none.recipients.clear();
        for (what, changed) in [
            ("reordered", reordered),
            ("dropped", dropped),
            ("added", added),
            ("none", none),
        ] {
            let err = assert_fails(&opener, &changed, what);
            assert!(
                matches!(err, SealError::Tampered(_) | SealError::Format(_)),
                "{what}: {err:?}"
            );
        }
    }

    #[test]
    fn swapping_ciphertexts_between_two_reports_of_one_run_fails() {
        let f = fixture();
        let one = f.sealer.seal("H1", b"household one").unwrap();
        let two = f.sealer.seal("H2", b"household two").unwrap();
        let opener = Opener::new(f.civil, None);
        let swapped = SealedReport {
            nonce: two.nonce.clone(),
            ciphertext: two.ciphertext.clone(),
            ..one.clone()
        };
        let err = assert_fails(&opener, &swapped, "swapped");
        assert!(matches!(err, SealError::Tampered(_)), "{err:?}");
        let renamed = SealedReport {
            report_id: "H2".into(),
            ..one
        };
        let err = assert_fails(&opener, &renamed, "renamed");
        assert!(matches!(err, SealError::Tampered(_)), "{err:?}");
    }

    #[test]
    fn a_report_re_signed_by_another_key_is_rejected_when_a_trusted_signer_is_given() {
        let f = fixture();
        let forger = SigningKey::generate().unwrap();
        let forged = RunSealer::new(&forger, &[f.civil.public()], "run-2024-06-01")
            .unwrap()
            .seal("H1", b"a forged report")
            .unwrap();

        let trusting = Opener::new(f.civil.clone(), Some(f.signing.verifying_key()));
        let err = assert_fails(&trusting, &forged, "forged");
        match err {
            SealError::UntrustedSigner { expected, found } => {
                assert_eq!(expected, f.signing.key_id());
                assert_eq!(found, forger.key_id());
            }
            other => panic!("expected UntrustedSigner, got {other:?}"),
        }
        // The genuine report still opens with the same opener.
        let genuine = f.sealer.seal("H1", PLAINTEXT).unwrap();
        assert_eq!(trusting.open(&genuine).unwrap(), PLAINTEXT);

        // Without a trusted signer the embedded key is used: integrity only.
        let untrusting = Opener::new(f.civil, None);
        assert_eq!(untrusting.open(&forged).unwrap(), b"a forged report");
    }

    #[test]
    fn replacing_the_signer_key_without_re_signing_is_tampering() {
        let f = fixture();
        let sealed = f.sealer.seal("H1", PLAINTEXT).unwrap();
        let other = SigningKey::generate().unwrap().verifying_key();
        let changed = SealedReport {
            signer_key_id: other.key_id(),
            signer_public_key: BASE64.encode(other.as_bytes()),
            ..sealed
        };
        let opener = Opener::new(f.civil, Some(f.signing.verifying_key()));
        let err = assert_fails(&opener, &changed, "replaced signer");
        assert!(matches!(err, SealError::Tampered(_)), "{err:?}");
    }

    #[test]
    fn a_thousand_reports_of_one_run_open_with_one_key_agreement() {
        let f = fixture();
        let opener = Opener::new(f.audit.clone(), Some(f.signing.verifying_key()));
        for i in 0..1000 {
            let id = format!("H{i:05}");
            let plaintext = format!("{{\"household_id\":\"{id}\"}}");
            let sealed = f.sealer.seal(&id, plaintext.as_bytes()).unwrap();
            assert_eq!(opener.open(&sealed).unwrap(), plaintext.as_bytes());
        }
        assert_eq!(opener.key_agreements(), 1);

        // A second run is a second agreement.
        let next =
            RunSealer::new(&f.signing, &[f.civil.public(), f.audit.public()], "run-2").unwrap();
        opener.open(&next.seal("H00000", b"x").unwrap()).unwrap();
        assert_eq!(opener.key_agreements(), 2);
    }

    #[test]
    fn reports_of_one_run_open_in_parallel_from_many_threads() {
        let f = fixture();
        let reports: Vec<(String, SealedReport)> = (0..400)
            .map(|i| {
                let id = format!("H{i}");
                let sealed = f.sealer.seal(&id, id.as_bytes()).unwrap();
                (id, sealed)
            })
            .collect();
        let opener = Opener::new(f.civil, None);
        std::thread::scope(|scope| {
            for chunk in reports.chunks(100) {
                let opener = &opener;
                scope.spawn(move || {
                    for (id, sealed) in chunk {
                        assert_eq!(opener.open(sealed).unwrap(), id.as_bytes());
                    }
                });
            }
        });
        assert!((1..=4).contains(&opener.key_agreements()));
    }

    #[test]
    fn sealing_twice_gives_different_envelopes_that_both_open() {
        let f = fixture();
        let a = f.sealer.seal("H1", PLAINTEXT).unwrap();
        let b = f.sealer.seal("H1", PLAINTEXT).unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
        assert_eq!(
            a.recipients, b.recipients,
            "one agreement per run and recipient"
        );
        let opener = Opener::new(f.civil, None);
        assert_eq!(opener.open(&a).unwrap(), opener.open(&b).unwrap());
    }

    #[test]
    fn each_run_uses_fresh_ephemeral_keys() {
        let f = fixture();
        let again = RunSealer::new(
            &f.signing,
            &[f.civil.public(), f.audit.public()],
            "run-2024-06-01",
        )
        .unwrap();
        let a = f.sealer.seal("H1", PLAINTEXT).unwrap();
        let b = again.seal("H1", PLAINTEXT).unwrap();
        for (x, y) in a.recipients.iter().zip(&b.recipients) {
            assert_eq!(x.key_id, y.key_id);
            assert_ne!(x.ephemeral_public, y.ephemeral_public);
        }
        assert_ne!(
            a.recipients[0].ephemeral_public,
            a.recipients[1].ephemeral_public
        );
    }

    #[test]
    fn a_run_without_recipients_or_with_a_low_order_key_cannot_be_sealed() {
        let signing = SigningKey::generate().unwrap();
        let err = RunSealer::new(&signing, &[], "run").unwrap_err();
        assert!(matches!(err, SealError::Crypto(_)), "{err:?}");
        let zero = RecipientPublicKey::from_bytes([0u8; 32]);
        let err = RunSealer::new(&signing, &[zero], "run").unwrap_err();
        assert!(matches!(err, SealError::Crypto(_)), "{err:?}");
    }

    #[test]
    fn a_recipient_given_twice_gets_one_entry() {
        let key = RecipientPrivateKey::generate().unwrap();
        let signing = SigningKey::generate().unwrap();
        let sealer = RunSealer::new(&signing, &[key.public(), key.public()], "run").unwrap();
        assert_eq!(sealer.recipient_key_ids(), vec![key.key_id()]);
        let sealed = sealer.seal("H1", b"x").unwrap();
        assert_eq!(Opener::new(key, None).open(&sealed).unwrap(), b"x");
    }

    #[test]
    fn unknown_fields_in_the_json_are_rejected() {
        let f = fixture();
        let sealed = f.sealer.seal("H1", PLAINTEXT).unwrap();
        let mut value = serde_json::to_value(&sealed).unwrap();
        value["extra"] = serde_json::json!(1);
        assert!(serde_json::from_value::<SealedReport>(value).is_err());
        let mut value = serde_json::to_value(&sealed).unwrap();
        value["recipients"][0]["extra"] = serde_json::json!(1);
        assert!(serde_json::from_value::<SealedReport>(value).is_err());
    }

    #[test]
    fn an_unknown_version_is_a_format_error_naming_the_version() {
        let f = fixture();
        let sealed = SealedReport {
            version: 4,
            ..f.sealer.seal("H1", PLAINTEXT).unwrap()
        };
        let err = assert_fails(&Opener::new(f.civil, None), &sealed, "version 4");
        assert!(matches!(err, SealError::Format(_)), "{err:?}");
        assert!(err.to_string().contains("version 4"), "{err}");
    }

    /// Version 1 envelopes (uncompressed content) still open; the version is signed, so a
    /// version-2 envelope relabelled 1 (or the reverse) does not.
    #[test]
    fn a_version_1_envelope_opens_and_relabelling_the_version_is_tampering() {
        let f = fixture();
        let opener = Opener::new(f.civil, None);
        let v1 = f
            .sealer
            .seal_content("H1", PLAINTEXT.to_vec(), SEAL_VERSION_UNCOMPRESSED)
            .unwrap();
        assert_eq!(v1.version, 1);
        assert_eq!(opener.open(&v1).unwrap(), PLAINTEXT);
        let v2 = f.sealer.seal("H1", PLAINTEXT).unwrap();
        assert_eq!(v2.version, 2);
        assert_eq!(opener.open(&v2).unwrap(), PLAINTEXT);
        // the compressed content is shorter than the report for a repetitive report
        let long: Vec<u8> = PLAINTEXT.repeat(50);
        let v2_long = f.sealer.seal("H2", &long).unwrap();
        let bytes = BASE64.decode(&v2_long.ciphertext).unwrap().len();
        assert!(bytes < long.len() / 2, "{bytes} of {}", long.len());
        assert_eq!(opener.open(&v2_long).unwrap(), long);
        for (sealed, other) in [(v1, 2), (v2, 1)] {
            let err = opener
                .open(&SealedReport {
                    version: other,
                    ..sealed
                })
                .unwrap_err();
            assert!(matches!(err, SealError::Tampered(_)), "{err:?}");
        }
    }

    #[test]
    fn errors_and_debug_output_never_contain_the_plaintext_or_secrets() {
        let f = fixture();
        let sealed = f.sealer.seal("H1", PLAINTEXT).unwrap();
        let shown = format!("{:?} {:?}", f.sealer, Opener::new(f.civil.clone(), None));
        assert!(shown.contains(&f.civil.key_id()), "{shown}");
        assert!(!shown.contains("eligible"), "{shown}");
        let tampered = SealedReport {
            ciphertext: BASE64.encode([0u8; 64]),
            ..sealed
        };
        let err = Opener::new(f.civil, None).open(&tampered).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the sealed report was changed after sealing (the signature does not verify)"
        );
    }

    #[test]
    fn the_sealer_and_the_opener_can_be_shared_across_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<RunSealer>();
        shareable::<Opener>();
        shareable::<SigningKey>();
        shareable::<RecipientPrivateKey>();
    }

    #[test]
    fn the_schema_lists_exactly_the_fields_of_the_envelope() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../schemas/sealed_report.json")).unwrap();
        let f = fixture();
        let sealed = serde_json::to_value(f.sealer.seal("H1", PLAINTEXT).unwrap()).unwrap();

        let keys = |v: &serde_json::Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        let strings = |v: &serde_json::Value| {
            let mut k: Vec<String> = v
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect();
            k.sort();
            k
        };
        let batched = serde_json::to_value(&batch_of(&f, 2)[0]).unwrap();
        assert_eq!(schema["additionalProperties"], serde_json::json!(false));
        assert_eq!(keys(&schema["properties"]), keys(&batched));
        assert_eq!(strings(&schema["required"]), keys(&sealed));
        let proof = &schema["properties"]["batch"];
        assert_eq!(keys(&proof["properties"]), keys(&batched["batch"]));
        assert_eq!(strings(&proof["required"]), keys(&batched["batch"]));
        assert_eq!(proof["properties"]["size"]["maximum"], MAX_BATCH_LEAVES);
        let item = &schema["$defs"]["wrapped_key"];
        assert_eq!(item["additionalProperties"], serde_json::json!(false));
        assert_eq!(keys(&item["properties"]), keys(&sealed["recipients"][0]));
        assert_eq!(strings(&item["required"]), keys(&sealed["recipients"][0]));
        assert_eq!(
            schema["properties"]["version"]["enum"],
            serde_json::json!([SEAL_VERSION_UNCOMPRESSED, SEAL_VERSION, SEAL_VERSION_BATCH])
        );
    }
}
