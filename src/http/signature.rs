//! Signatures of provider callbacks: header
//! `X-Billing-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`, keyed
//! with `CALLBACK_SECRET` (or, during a rotation, `CALLBACK_SECRET_PREVIOUS`), checked over
//! the raw bytes before anything is parsed.
//!
//! The work is bounded whatever the header holds: the header is at most
//! [`MAX_HEADER_BYTES`] with at most [`MAX_SIGNATURES`] `v1` entries, and one MAC is
//! computed per active secret (not per entry); each entry is compared with it in constant
//! time. A signature that was accepted once is refused after that (see the callback handler).

use hmac::digest::CtOutput;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::AppError;

pub const HEADER: &str = "x-billing-signature";
/// Signatures older (or further in the future) than this are refused.
pub const TOLERANCE_SECONDS: i64 = 300;
/// The longest signature header read (a timestamp and a few signatures fit many times over).
pub const MAX_HEADER_BYTES: usize = 1024;
/// The most `v1=` entries read (one per secret a sender may be rotating through).
pub const MAX_SIGNATURES: usize = 4;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Result<CtOutput<HmacSha256>, AppError> {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).map_err(AppError::internal)?;
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    Ok(mac.finalize())
}

/// The header value for `body` signed at `timestamp` (used by tests and documented clients).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> Result<String, AppError> {
    Ok(format!("t={timestamp},v1={}", hex::encode(mac(secret, timestamp, body)?.into_bytes())))
}

fn unauthenticated(message: &str) -> AppError {
    AppError::Unauthenticated(message.to_owned())
}

/// A signature that matched. `replay_key` identifies the signed message (its timestamp and
/// body) whichever secret signed it: the MAC under the current secret, always computed, so
/// a delivery cannot be replayed under the other secret during a rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub replay_key: Vec<u8>,
}

/// Checks a signature header against the raw body at time `now` (unix seconds), with any
/// of `secrets`.
pub fn verify(secrets: &[&str], header: Option<&str>, body: &[u8], now: i64) -> Result<Verified, AppError> {
    let header = header.ok_or_else(|| unauthenticated("the X-Billing-Signature header is missing"))?;
    if header.len() > MAX_HEADER_BYTES {
        return Err(unauthenticated("the X-Billing-Signature header is longer than 1024 bytes"));
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.trim().parse::<i64>().ok(),
            Some(("v1", value)) => signatures.push(value.trim()),
            _ => {}
        }
    }
    if signatures.len() > MAX_SIGNATURES {
        return Err(unauthenticated("the X-Billing-Signature header holds more than 4 v1 signatures"));
    }
    let timestamp =
        timestamp.ok_or_else(|| unauthenticated("the X-Billing-Signature header needs t=<unix seconds>"))?;
    // Checked: an extreme t must not overflow.
    let skew = now.checked_sub(timestamp).map(i64::unsigned_abs);
    if skew.is_none_or(|skew| skew > TOLERANCE_SECONDS.unsigned_abs()) {
        return Err(unauthenticated("the X-Billing-Signature timestamp is more than 5 minutes away from now"));
    }
    let candidates: Vec<Vec<u8>> = signatures
        .into_iter()
        .filter_map(|s| hex::decode(s).ok())
        .filter(|bytes| bytes.len() == <HmacSha256 as hmac::digest::OutputSizeUser>::output_size())
        .collect();
    let macs = secrets.iter().map(|secret| mac(secret, timestamp, body)).collect::<Result<Vec<_>, _>>()?;
    let Some(current) = macs.first() else { return Err(unauthenticated("no callback secret is configured")) };
    for expected in &macs {
        for candidate in &candidates {
            // CtOutput's equality is constant-time.
            if *expected == CtOutput::new(hmac::digest::Output::<HmacSha256>::clone_from_slice(candidate)) {
                return Ok(Verified { replay_key: current.clone().into_bytes().to_vec() });
            }
        }
    }
    Err(unauthenticated("the X-Billing-Signature does not match the body"))
}
