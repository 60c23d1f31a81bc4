//! Signatures of provider callbacks: header
//! `X-Billing-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`, keyed
//! with `CALLBACK_SECRET`, checked over the raw bytes before anything is parsed.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::AppError;

pub const HEADER: &str = "x-billing-signature";
/// Signatures older (or further in the future) than this are refused.
pub const TOLERANCE_SECONDS: i64 = 300;

fn mac(secret: &str) -> Result<Hmac<Sha256>, AppError> {
    Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(AppError::internal)
}

/// The header value for `body` signed at `timestamp` (used by tests and documented clients).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> Result<String, AppError> {
    let mut mac = mac(secret)?;
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    Ok(format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes())))
}

fn unauthenticated(message: &str) -> AppError {
    AppError::Unauthenticated(message.to_owned())
}

/// Checks a signature header against the raw body at time `now` (unix seconds).
pub fn verify(secret: &str, header: Option<&str>, body: &[u8], now: i64) -> Result<(), AppError> {
    let header = header.ok_or_else(|| unauthenticated("the X-Billing-Signature header is missing"))?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.trim().parse::<i64>().ok(),
            Some(("v1", value)) => signatures.push(value.trim()),
            _ => {}
        }
    }
    let timestamp =
        timestamp.ok_or_else(|| unauthenticated("the X-Billing-Signature header needs t=<unix seconds>"))?;
    if (now - timestamp).abs() > TOLERANCE_SECONDS {
        return Err(unauthenticated("the X-Billing-Signature timestamp is more than 5 minutes away from now"));
    }
    for signature in signatures {
        let Ok(expected) = hex::decode(signature) else { continue };
        let mut mac = mac(secret)?;
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(body);
        // verify_slice compares in constant time.
        if mac.verify_slice(&expected).is_ok() {
            return Ok(());
        }
    }
    Err(unauthenticated("the X-Billing-Signature does not match the body"))
}
