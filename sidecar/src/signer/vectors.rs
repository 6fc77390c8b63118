//! Published signing vectors, run through the same post-processing a token signature gets.
//!
//! Each test builds the unsigned transaction from a JSON `TransactionRequest` as a dApp sends
//! it, checks the signing payload and hash against the vector, then signs the hash the way the
//! token path does (raw `r || s`, optionally with `s` flipped high as some HSMs return it,
//! normalised and given its parity by [`ethereum_signature`]) and compares the encoded
//! signed transaction byte for byte. RFC 6979 makes the k256 signature deterministic, which is
//! what the vectors' authors used too.
//!
//! Sources: EIP-155's worked example; ethereumjs `packages/tx/test/json/eip2930txs.json` and
//! `eip1559.json`; EIP-712's Mail example.

#![allow(clippy::unwrap_used)]

use alloy::consensus::{SignableTransaction, TypedTransaction};
use alloy::dyn_abi::TypedData;
use alloy::eips::eip2718::Encodable2718;
use alloy::network::TxSigner;
use alloy::primitives::{B256, Signature, address, b256, hex, keccak256};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::Signer;
use alloy::signers::local::PrivateKeySigner;
use k256::ecdsa::SigningKey;

use super::ecdsa::{address_of, ethereum_signature};

const SECP256K1_ORDER: [u8; 32] =
    hex!("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141");

/// Signs `hash` like a token would and post-processes it like `Token::sign_prehash` does.
/// With `high_s`, the raw signature carries `n - s`, as a token is free to return.
fn sign_like_token(key: &SigningKey, hash: &B256, high_s: bool) -> Signature {
    let (sig, _) = key.sign_prehash_recoverable(hash.as_slice()).unwrap();
    let mut raw = sig.to_bytes().to_vec();
    if high_s {
        let n = alloy::primitives::U256::from_be_bytes(SECP256K1_ORDER);
        let s = alloy::primitives::U256::from_be_slice(&raw[32..]);
        raw[32..].copy_from_slice(&(n - s).to_be_bytes::<32>());
    }
    let public: [u8; 65] =
        key.verifying_key().to_encoded_point(false).as_bytes().try_into().unwrap();
    let (signature, flipped) = ethereum_signature(&raw, hash, &public).unwrap();
    assert_eq!(flipped, high_s);
    signature
}

fn signing_key(hex_key: &str) -> SigningKey {
    SigningKey::from_slice(&hex::decode(hex_key).unwrap()).unwrap()
}

fn typed_tx(json: &str) -> TypedTransaction {
    let request: TransactionRequest = serde_json::from_str(json).unwrap();
    request.build_typed_tx().unwrap()
}

/// Encodes `tx` signed with `signature` as it goes into `eth_sendRawTransaction`.
fn encode_signed(tx: TypedTransaction, signature: Signature) -> Vec<u8> {
    tx.into_envelope(signature).encoded_2718()
}

/// A minimal RLP encoder, independent of alloy's, to state the vectors' payloads field by field.
enum Rlp {
    Bytes(Vec<u8>),
    List(Vec<Rlp>),
}

impl Rlp {
    fn uint(value: u128) -> Self {
        let bytes = value.to_be_bytes();
        let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        Self::Bytes(bytes[first..].to_vec())
    }

    fn hex(value: &str) -> Self {
        Self::Bytes(hex::decode(value).unwrap())
    }

    fn encode(&self) -> Vec<u8> {
        let (payload, short, long) = match self {
            Self::Bytes(b) if b.len() == 1 && b[0] < 0x80 => return b.clone(),
            Self::Bytes(b) => (b.clone(), 0x80u8, 0xb7u8),
            Self::List(items) => (items.iter().flat_map(Self::encode).collect(), 0xc0, 0xf7),
        };
        let mut out = Vec::new();
        if payload.len() < 56 {
            out.push(short + payload.len() as u8);
        } else {
            let len = (payload.len() as u64).to_be_bytes();
            let first = len.iter().position(|b| *b != 0).unwrap_or(len.len());
            out.push(long + (len.len() - first) as u8);
            out.extend_from_slice(&len[first..]);
        }
        out.extend_from_slice(&payload);
        out
    }
}

#[test]
fn eip155_example_legacy_transaction() {
    let key = signing_key("4646464646464646464646464646464646464646464646464646464646464646");
    let from =
        address_of(&key.verifying_key().to_encoded_point(false).as_bytes().try_into().unwrap());
    let tx = typed_tx(&format!(
        r#"{{"from":"{from}","to":"0x3535353535353535353535353535353535353535",
            "gas":"0x5208","gasPrice":"0x4a817c800","value":"0xde0b6b3a7640000",
            "nonce":"0x9","chainId":"0x1"}}"#
    ));
    assert!(matches!(tx, TypedTransaction::Legacy(_)));

    assert_eq!(
        hex::encode(tx.encoded_for_signing()),
        "ec098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a7640000\
         80018080"
    );
    let hash = tx.signature_hash();
    assert_eq!(hash, b256!("daf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53"));

    let expected = "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6\
                    b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa\
                    636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83";
    for high_s in [false, true] {
        let signature = sign_like_token(&key, &hash, high_s);
        // v = 37 = chain id * 2 + 35 + parity 0.
        assert!(!signature.v());
        assert_eq!(
            signature.r().to_string(),
            "18515461264373351373200002665853028612451056578545711640558177340181847433846"
        );
        assert_eq!(
            signature.s().to_string(),
            "46948507304638947509940763649030358759909902576025900602547168820602576006531"
        );
        assert_eq!(hex::encode(encode_signed(tx.clone(), signature)), expected);
        assert_eq!(signature.recover_address_from_prehash(&hash).unwrap(), from);
    }
}

#[tokio::test]
async fn legacy_request_without_chain_id_gets_the_signers() {
    // A dApp may omit chainId; the signer's chain id then applies (EIP-155), as in alloy.
    let signer: PrivateKeySigner =
        "4646464646464646464646464646464646464646464646464646464646464646".parse().unwrap();
    let signer = signer.with_chain_id(Some(1));
    let mut tx = typed_tx(
        r#"{"to":"0x3535353535353535353535353535353535353535","gas":"0x5208",
            "gasPrice":"0x4a817c800","value":"0xde0b6b3a7640000","nonce":"0x9"}"#,
    );
    let signature = signer.sign_transaction(&mut tx).await.unwrap();
    assert_eq!(
        tx.signature_hash(),
        b256!("daf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53")
    );
    assert!(hex::encode(encode_signed(tx, signature)).starts_with("f86c09"));
}

#[test]
fn eip2930_access_list_transaction() {
    // ethereumjs eip2930txs.json, the "message" vector. Its r, s and v are the RFC 6979
    // signature of the ethereum/tests key 0x45a9..f2d8 (address 0xa94f..bf0b), not of the
    // `privateKey` listed next to them; that key is used here.
    let key = signing_key("45a915e4d060149eb4365960e6a7a45f334393093061116b197e3240065ff2d8");
    let sender = address!("a94f5374fce5edbc8e2a8697c15331677e6ebf0b");
    let data = "1a8451e600000000000000000000000000000000000000000000000000000000000000000000000000\
                000000000000000000000000000000000000000000000000000000";
    let slot_a = "0000000000000000000000000000000000000000000000000000000000000000";
    let slot_b = "00000000000000000000000000000000000000000000000000000000000060a7";
    let tx = typed_tx(&format!(
        r#"{{"from":"{sender}","to":"0xcccccccccccccccccccccccccccccccccccccccc",
            "gas":"0x2625a00","gasPrice":"0x1","value":"0x186a0","nonce":"0x0","chainId":"0x1",
            "input":"0x{data}","type":"0x1",
            "accessList":[{{"address":"0x0000000000000000000000000000000000000101",
                            "storageKeys":["0x{slot_a}","0x{slot_b}"]}}]}}"#
    ));
    assert!(matches!(tx, TypedTransaction::Eip2930(_)));

    let fields = || {
        vec![
            Rlp::uint(1),
            Rlp::uint(0),
            Rlp::uint(1),
            Rlp::uint(0x0262_5a00),
            Rlp::hex("cccccccccccccccccccccccccccccccccccccccc"),
            Rlp::uint(0x0186a0),
            Rlp::hex(data),
            Rlp::List(vec![Rlp::List(vec![
                Rlp::hex("0000000000000000000000000000000000000101"),
                Rlp::List(vec![Rlp::hex(slot_a), Rlp::hex(slot_b)]),
            ])]),
        ]
    };
    let mut payload = vec![0x01];
    payload.extend(Rlp::List(fields()).encode());
    assert_eq!(tx.encoded_for_signing(), payload);
    let hash = tx.signature_hash();
    assert_eq!(hash, keccak256(&payload));

    let r = "afb6e247b1c490e284053c87ab5f6b59e219d51f743f7a4d83e400782bc7e4b9";
    let s = "479a268e0e0acd4de3f1e28e4fac2a6b32a4195e8dfa9d19147abe8807aa6f64";
    let mut signed_fields = fields();
    signed_fields.extend([Rlp::uint(1), Rlp::hex(r), Rlp::hex(s)]);
    let mut expected = vec![0x01];
    expected.extend(Rlp::List(signed_fields).encode());

    for high_s in [false, true] {
        let signature = sign_like_token(&key, &hash, high_s);
        assert!(signature.v(), "vector's v is 1");
        assert_eq!(hex::encode(signature.r().to_be_bytes::<32>()), r);
        assert_eq!(hex::encode(signature.s().to_be_bytes::<32>()), s);
        assert_eq!(encode_signed(tx.clone(), signature), expected);
        assert_eq!(signature.recover_address_from_prehash(&hash).unwrap(), sender);
    }
}

#[test]
fn eip1559_dynamic_fee_transactions() {
    // ethereumjs eip1559.json: key 0x8f2a..be63, chain id 7822 (0x1e8e), to 0x..aaaa, no data.
    let key = signing_key("8f2a55949038a9610f50fb23b5883af3b4ecb3c3bb792cbcefbd1542c692be63");
    let from =
        address_of(&key.verifying_key().to_encoded_point(false).as_bytes().try_into().unwrap());
    // (nonce, value, gas limit, max priority fee, max fee, signed transaction)
    let vectors: [(u64, u64, u64, u64, u64, &str); 3] = [
        (
            819,
            43_203_529,
            35_552,
            75_853,
            121_212,
            "02f870821e8e8203338301284d8301d97c828ae094000000000000000000000000000000000000aaaa\
             8402933bc980c080a0d067f2167008c59219652f91cbf8788dbca5f771f6e91e2b7657e85b78b472e0\
             a01d305af9fe81fdba43f0dfcd400ed24dcace0a7e30d4e85701dcaaf484cd079e",
        ),
        (
            353,
            61_901_619,
            32_593,
            38_850,
            136_295,
            "02f86f821e8e8201618297c283021467827f5194000000000000000000000000000000000000aaaa84\
             03b08b3380c001a004205678f13fc1d7b10feea6513dfa76e24418b6e08097d95c6f93a3b64e536da0\
             1d45ad61bfece43862de2cce7d2575a8c1d08c26c87f3cb5f26d7b0be54a91b2",
        ),
        (
            119,
            65_456_115,
            62_341,
            24_721,
            107_729,
            "02f86d821e8e778260918301a4d182f38594000000000000000000000000000000000000aaaa8403e6\
             c7f380c001a0e38e239770801eb995498c821e55ac9c19ae09184bb27b34be105e02fe3b7615a067c6\
             4ca6bd6d9107e85fd581ab2e70a14b637eb36505bb40861ef9d6e800cab6",
        ),
    ];

    for (nonce, value, gas, tip, max_fee, signed) in vectors {
        let tx = typed_tx(&format!(
            r#"{{"from":"{from}","to":"0x000000000000000000000000000000000000aaaa",
                "gas":"{gas:#x}","maxFeePerGas":"{max_fee:#x}",
                "maxPriorityFeePerGas":"{tip:#x}","value":"{value:#x}","nonce":"{nonce:#x}",
                "chainId":"0x1e8e"}}"#
        ));
        assert!(matches!(tx, TypedTransaction::Eip1559(_)));

        let fields = vec![
            Rlp::uint(7822),
            Rlp::uint(nonce.into()),
            Rlp::uint(tip.into()),
            Rlp::uint(max_fee.into()),
            Rlp::uint(gas.into()),
            Rlp::hex("000000000000000000000000000000000000aaaa"),
            Rlp::uint(value.into()),
            Rlp::Bytes(Vec::new()),
            Rlp::List(Vec::new()),
        ];
        let mut payload = vec![0x02];
        payload.extend(Rlp::List(fields).encode());
        assert_eq!(tx.encoded_for_signing(), payload, "nonce {nonce}");
        let hash = tx.signature_hash();

        for high_s in [false, true] {
            let signature = sign_like_token(&key, &hash, high_s);
            assert_eq!(hex::encode(encode_signed(tx.clone(), signature)), signed, "nonce {nonce}");
            assert_eq!(signature.recover_address_from_prehash(&hash).unwrap(), from);
        }
    }
}

/// EIP-712's Mail example as `eth_signTypedData_v4` receives it.
const MAIL: &str = r#"{
  "types": {
    "EIP712Domain": [
      {"name": "name", "type": "string"},
      {"name": "version", "type": "string"},
      {"name": "chainId", "type": "uint256"},
      {"name": "verifyingContract", "type": "address"}
    ],
    "Person": [
      {"name": "name", "type": "string"},
      {"name": "wallet", "type": "address"}
    ],
    "Mail": [
      {"name": "from", "type": "Person"},
      {"name": "to", "type": "Person"},
      {"name": "contents", "type": "string"}
    ]
  },
  "primaryType": "Mail",
  "domain": {
    "name": "Ether Mail",
    "version": "1",
    "chainId": 1,
    "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
  },
  "message": {
    "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
    "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
    "contents": "Hello, Bob!"
  }
}"#;

#[tokio::test]
async fn eip712_mail_example() {
    let typed: TypedData = serde_json::from_str(MAIL).unwrap();
    let hash = typed.eip712_signing_hash().unwrap();
    assert_eq!(hash, b256!("be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"));

    let key = SigningKey::from_slice(keccak256("cow").as_slice()).unwrap();
    let cow = address!("CD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826");
    let expected_r = "4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d";
    let expected_s = "07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b91562";
    for high_s in [false, true] {
        let signature = sign_like_token(&key, &hash, high_s);
        assert_eq!(hex::encode(signature.r().to_be_bytes::<32>()), expected_r);
        assert_eq!(hex::encode(signature.s().to_be_bytes::<32>()), expected_s);
        assert_eq!(signature.v_byte(), 28);
        assert_eq!(signature.recover_address_from_prehash(&hash).unwrap(), cow);
    }

    // The Signer trait's typed-data path hashes the same bytes.
    let local = PrivateKeySigner::from_signing_key(key);
    let via_trait = local.sign_dynamic_typed_data(&typed).await.unwrap();
    assert_eq!(via_trait.v_byte(), 28);
    assert_eq!(hex::encode(via_trait.r().to_be_bytes::<32>()), expected_r);
}

#[test]
fn eip191_message_hash_is_the_prefixed_keccak() {
    let message = b"Hello World";
    let mut prefixed = b"\x19Ethereum Signed Message:\n11".to_vec();
    prefixed.extend_from_slice(message);
    assert_eq!(alloy::primitives::eip191_hash_message(message), keccak256(&prefixed));
}
