//! Pure secp256k1 helpers: turning what a PKCS#11 token returns into what Ethereum expects.
//!
//! A token's `CKM_ECDSA` signature is the bare `r || s` pair: `s` may be high and there is no
//! recovery id. Ethereum wants low `s` (EIP-2) and the y parity of the nonce point, which these
//! functions find by recovering the public key and comparing it with the key's own.

use alloy::primitives::{Address, B256, Signature, U256, uint};
use k256::ecdsa::{RecoveryId, Signature as K256Signature, VerifyingKey};

use super::SignerError;

/// DER encoding of the secp256k1 curve OID (1.3.132.0.10), the value of `CKA_EC_PARAMS`.
pub const SECP256K1_EC_PARAMS: [u8; 7] = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];

/// The order `n` of the secp256k1 group.
const SECP256K1_ORDER: U256 =
    uint!(0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141_U256);

/// `n / 2`: the largest `s` EIP-2 accepts.
const SECP256K1_HALF_ORDER: U256 = SECP256K1_ORDER.wrapping_shr(1);

/// Length of an uncompressed SEC1 point: the `0x04` tag, then 32 bytes each of x and y.
const UNCOMPRESSED_POINT_LEN: usize = 65;

/// Tag of an uncompressed SEC1 point.
const UNCOMPRESSED_TAG: u8 = 0x04;

/// DER tag of an OCTET STRING, which wraps `CKA_EC_POINT` in PKCS#11 2.x tokens.
const DER_OCTET_STRING: u8 = 0x04;

/// Length of a raw `CKM_ECDSA` signature over a 256-bit curve: `r` and `s`, 32 bytes each.
const RAW_SIGNATURE_LEN: usize = 64;

/// Brings `s` into the lower half of the group order as EIP-2 requires.
///
/// Returns the low `s` and whether it was flipped to `n - s`. A flip negates the nonce point,
/// so the y parity of a signature flips with it. `s` must be in `1..n`.
pub fn normalize_s(s: U256) -> (U256, bool) {
    if s > SECP256K1_HALF_ORDER { (SECP256K1_ORDER - s, true) } else { (s, false) }
}

/// Finds the y parity (`false` = even, `true` = odd) under which `(r, s)` over `hash` recovers
/// `public_key` (uncompressed SEC1).
///
/// `s` must already be low (see [`normalize_s`]); a high `s` is rejected rather than silently
/// normalised, because the parity of the normalised signature differs.
pub fn recovery_parity(
    hash: &B256,
    r: U256,
    s: U256,
    public_key: &[u8; 65],
) -> Result<bool, SignerError> {
    if s > SECP256K1_HALF_ORDER {
        return Err(SignerError::InvalidSignature("s is not normalised".into()));
    }
    let signature = K256Signature::from_scalars(r.to_be_bytes::<32>(), s.to_be_bytes::<32>())
        .map_err(|_| SignerError::InvalidSignature("r or s out of range".into()))?;

    for parity in [false, true] {
        let recovered = VerifyingKey::recover_from_prehash(
            hash.as_slice(),
            &signature,
            RecoveryId::new(parity, false),
        );
        if let Ok(key) = recovered
            && key.to_encoded_point(false).as_bytes() == public_key.as_slice()
        {
            return Ok(parity);
        }
    }
    Err(SignerError::NotRecoverable(address_of(public_key)))
}

/// The Ethereum address of an uncompressed SEC1 public key: the last 20 bytes of
/// `keccak256(x || y)`.
pub fn address_of(public_key: &[u8; 65]) -> Address {
    let mut xy = [0u8; 64];
    xy.copy_from_slice(&public_key[1..]);
    Address::from_raw_public_key(&xy)
}

/// Decodes `CKA_EC_POINT` into an uncompressed SEC1 point and checks it lies on secp256k1.
///
/// PKCS#11 2.40 says the value is a DER OCTET STRING around the point (`04 41 04 x y`); some
/// modules return the bare point. Both are accepted.
pub(crate) fn decode_ec_point(value: &[u8]) -> Result<[u8; 65], SignerError> {
    let point = match value {
        [DER_OCTET_STRING, len, rest @ ..]
            if usize::from(*len) == UNCOMPRESSED_POINT_LEN
                && rest.len() == UNCOMPRESSED_POINT_LEN =>
        {
            rest
        }
        bare if bare.len() == UNCOMPRESSED_POINT_LEN => bare,
        other => {
            return Err(SignerError::InvalidPublicKey(format!(
                "ec point of {} bytes is neither a bare nor a der-wrapped uncompressed point",
                other.len()
            )));
        }
    };
    if point[0] != UNCOMPRESSED_TAG {
        return Err(SignerError::InvalidPublicKey("ec point is not uncompressed".into()));
    }
    VerifyingKey::from_sec1_bytes(point)
        .map_err(|_| SignerError::InvalidPublicKey("ec point is not on secp256k1".into()))?;

    let mut out = [0u8; UNCOMPRESSED_POINT_LEN];
    out.copy_from_slice(point);
    Ok(out)
}

/// Turns a token's raw `CKM_ECDSA` output over `hash` into an Ethereum signature: low `s`,
/// y parity found by recovering `public_key`. Also returns whether `s` was flipped.
pub(crate) fn ethereum_signature(
    raw: &[u8],
    hash: &B256,
    public_key: &[u8; 65],
) -> Result<(Signature, bool), SignerError> {
    let (r, s) = split_raw_signature(raw)?;
    let (s, flipped) = normalize_s(s);
    let parity = recovery_parity(hash, r, s, public_key)?;
    Ok((Signature::new(r, s, parity), flipped))
}

/// Splits a raw `CKM_ECDSA` signature into `r` and `s` and checks both are in `1..n`.
pub(crate) fn split_raw_signature(raw: &[u8]) -> Result<(U256, U256), SignerError> {
    if raw.len() != RAW_SIGNATURE_LEN {
        return Err(SignerError::InvalidSignature(format!(
            "expected {RAW_SIGNATURE_LEN} bytes, got {}",
            raw.len()
        )));
    }
    let (r, s) = raw.split_at(RAW_SIGNATURE_LEN / 2);
    let r = U256::from_be_slice(r);
    let s = U256::from_be_slice(s);
    let in_range = |v: U256| !v.is_zero() && v < SECP256K1_ORDER;
    if !in_range(r) || !in_range(s) {
        return Err(SignerError::InvalidSignature("r or s out of range".into()));
    }
    Ok((r, s))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use alloy::primitives::{b256, hex};
    use k256::ecdsa::SigningKey;

    use super::*;

    /// A fixed test key, so failures reproduce.
    fn key() -> SigningKey {
        SigningKey::from_slice(&[0x46; 32]).unwrap()
    }

    fn uncompressed(key: &SigningKey) -> [u8; 65] {
        key.verifying_key().to_encoded_point(false).as_bytes().try_into().unwrap()
    }

    /// Signs `hash` with k256 and returns the raw `r || s` a token would return.
    fn raw_sign(key: &SigningKey, hash: &B256) -> (U256, U256, bool) {
        let (sig, recid) = key.sign_prehash_recoverable(hash.as_slice()).unwrap();
        let (r, s) = sig.split_bytes();
        (U256::from_be_slice(&r), U256::from_be_slice(&s), recid.is_y_odd())
    }

    #[test]
    fn high_s_is_flipped_to_low_s_and_parity_flips() {
        let key = key();
        let public = uncompressed(&key);
        let hash = b256!("daf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53");
        let (r, s, parity) = raw_sign(&key, &hash);
        assert!(s <= SECP256K1_HALF_ORDER, "k256 signs with low s");

        // A token may return n - s instead: equally valid ECDSA, rejected by Ethereum.
        let high_s = SECP256K1_ORDER - s;
        assert!(high_s > SECP256K1_HALF_ORDER);
        let high =
            K256Signature::from_scalars(r.to_be_bytes::<32>(), high_s.to_be_bytes::<32>()).unwrap();
        use k256::ecdsa::signature::hazmat::PrehashVerifier;
        assert!(
            k256::ecdsa::VerifyingKey::from_sec1_bytes(&public)
                .unwrap()
                .verify_prehash(hash.as_slice(), &high)
                .is_err(),
            "k256 itself refuses high s"
        );

        let (low_s, flipped) = normalize_s(high_s);
        assert!(flipped);
        assert_eq!(low_s, s);
        let found = recovery_parity(&hash, r, low_s, &public).unwrap();
        assert_eq!(found, parity);

        // The parity that went with the high s is the opposite one.
        let high_parity = !found;
        let normalised = Signature::new(r, high_s, high_parity).normalized_s();
        assert_eq!(normalised.s(), low_s);
        assert_eq!(normalised.v(), found);

        let recovered =
            Signature::new(r, low_s, found).recover_address_from_prehash(&hash).unwrap();
        assert_eq!(recovered, address_of(&public));
    }

    #[test]
    fn low_s_is_left_alone() {
        let (s, flipped) = normalize_s(U256::from(7));
        assert_eq!((s, flipped), (U256::from(7), false));
        let (s, flipped) = normalize_s(SECP256K1_HALF_ORDER);
        assert_eq!((s, flipped), (SECP256K1_HALF_ORDER, false));
        let (s, flipped) = normalize_s(SECP256K1_HALF_ORDER + U256::from(1));
        assert!(flipped);
        assert_eq!(s, SECP256K1_HALF_ORDER);
    }

    #[test]
    fn recovery_parity_matches_k256_over_many_hashes() {
        let key = key();
        let public = uncompressed(&key);
        let mut seen = [false; 2];
        for i in 0u32..64 {
            let hash = alloy::primitives::keccak256(i.to_be_bytes());
            let (r, s, parity) = raw_sign(&key, &hash);
            let found = recovery_parity(&hash, r, s, &public).unwrap();
            assert_eq!(found, parity);
            seen[usize::from(found)] = true;
        }
        assert_eq!(seen, [true, true], "both parities occur");
    }

    #[test]
    fn recovery_parity_rejects_other_key_and_high_s() {
        let key = key();
        let other = uncompressed(&SigningKey::from_slice(&[0x47; 32]).unwrap());
        let hash = B256::repeat_byte(0x11);
        let (r, s, _) = raw_sign(&key, &hash);

        let err = recovery_parity(&hash, r, s, &other).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("signature does not recover to the key ({})", address_of(&other))
        );

        let err = recovery_parity(&hash, r, SECP256K1_ORDER - s, &uncompressed(&key)).unwrap_err();
        assert_eq!(err.to_string(), "invalid signature from token (s is not normalised)");
    }

    #[test]
    fn address_of_matches_eip155_example_key() {
        // The EIP-155 example key 0x4646..46 controls 0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F.
        let address = address_of(&uncompressed(&key()));
        assert_eq!(
            address,
            alloy::primitives::address!("9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F")
        );
    }

    #[test]
    fn ec_point_is_accepted_wrapped_and_bare() {
        let public = uncompressed(&key());
        let mut wrapped = vec![0x04, 0x41];
        wrapped.extend_from_slice(&public);
        assert_eq!(decode_ec_point(&wrapped).unwrap(), public);
        assert_eq!(decode_ec_point(&public).unwrap(), public);

        let compressed = key().verifying_key().to_encoded_point(true);
        assert!(decode_ec_point(compressed.as_bytes()).is_err());

        let mut off_curve = public;
        off_curve[64] ^= 1;
        let err = decode_ec_point(&off_curve).unwrap_err();
        assert_eq!(err.to_string(), "invalid public key (ec point is not on secp256k1)");
    }

    #[test]
    fn raw_signature_must_be_64_bytes_in_range() {
        let mut raw = [0u8; 64];
        raw[31] = 1;
        raw[63] = 2;
        assert_eq!(split_raw_signature(&raw).unwrap(), (U256::from(1), U256::from(2)));
        assert!(split_raw_signature(&raw[..63]).is_err());
        assert!(split_raw_signature(&[0u8; 64]).is_err());
        let mut at_order = raw;
        at_order[32..].copy_from_slice(&SECP256K1_ORDER.to_be_bytes::<32>());
        assert!(split_raw_signature(&at_order).is_err());
    }

    #[test]
    fn ec_params_is_the_secp256k1_oid() {
        assert_eq!(hex::encode(SECP256K1_EC_PARAMS), "06052b8104000a");
    }
}
