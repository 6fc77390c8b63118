//! QBFT `extraData` of a block header, as Besu reads it from a genesis file.
//!
//! The field is the RLP list `[vanity (32 bytes), [validator addresses], vote, round,
//! [committed seals]]`. In a genesis block the vote is the empty list (no vote), the round is
//! 0 and there are no seals; with contract-based validator selection the address list is empty
//! too, because the validators come from the contract.

use alloy::primitives::{Address, B256, Bytes};
use alloy::rlp::{Decodable, Encodable, Header};

use super::GenesisError;

/// The QBFT extra data of a genesis block: no vote is ever encoded or accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QbftExtraData {
    /// Free 32 bytes at the front; zero in generated genesis files.
    pub vanity: B256,
    /// The initial validators (node addresses), in the order the consensus uses them.
    pub validators: Vec<Address>,
    /// Consensus round of the block; 0 in a genesis block.
    pub round: u32,
    /// Committed seals; none in a genesis block.
    pub seals: Vec<Bytes>,
}

/// Length of the RLP encoding of an empty list: the single byte `0xc0`.
const EMPTY_LIST_LEN: usize = 1;

impl QbftExtraData {
    /// Extra data of a genesis block with `validators` and nothing else.
    pub fn genesis(validators: Vec<Address>) -> Self {
        Self { vanity: B256::ZERO, validators, round: 0, seals: Vec::new() }
    }

    /// The RLP encoding, the bytes of the genesis file's `extraData`.
    pub fn encode(&self) -> Vec<u8> {
        let payload_length = self.vanity.length()
            + self.validators.length()
            + EMPTY_LIST_LEN
            + self.round.length()
            + self.seals.length();
        let mut out = Vec::with_capacity(payload_length + 4);
        Header { list: true, payload_length }.encode(&mut out);
        self.vanity.encode(&mut out);
        self.validators.encode(&mut out);
        Header { list: true, payload_length: 0 }.encode(&mut out);
        self.round.encode(&mut out);
        self.seals.encode(&mut out);
        out
    }

    /// Decodes extra data; fails on a vote, on trailing bytes and on any malformed item.
    pub fn decode(bytes: &[u8]) -> Result<Self, GenesisError> {
        let err = |e: alloy::rlp::Error| GenesisError::ExtraData(e.to_string());
        let mut buf = bytes;
        let header = Header::decode(&mut buf).map_err(err)?;
        if !header.list {
            return Err(GenesisError::ExtraData("not an rlp list".into()));
        }
        if buf.len() != header.payload_length {
            return Err(GenesisError::ExtraData(format!(
                "list length ({}) differs from the bytes present ({})",
                header.payload_length,
                buf.len()
            )));
        }

        let vanity = B256::decode(&mut buf).map_err(err)?;
        let validators = Vec::<Address>::decode(&mut buf).map_err(err)?;
        let vote = Header::decode(&mut buf).map_err(err)?;
        if !vote.list || vote.payload_length != 0 {
            return Err(GenesisError::ExtraData("carries a vote; genesis has none".into()));
        }
        let round = u32::decode(&mut buf).map_err(err)?;
        let seals = Vec::<Bytes>::decode(&mut buf).map_err(err)?;
        if !buf.is_empty() {
            return Err(GenesisError::ExtraData(format!(
                "unexpected items after the seals ({} bytes)",
                buf.len()
            )));
        }
        Ok(Self { vanity, validators, round, seals })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_an_empty_validator_list() {
        let encoded = QbftExtraData::genesis(Vec::new()).encode();
        assert_eq!(encoded.len(), 38);
        assert_eq!(QbftExtraData::decode(&encoded).ok(), Some(QbftExtraData::genesis(Vec::new())));
    }

    #[test]
    fn refuses_trailing_bytes() {
        let mut encoded = QbftExtraData::genesis(vec![Address::repeat_byte(1)]).encode();
        encoded.push(0x80);
        assert!(QbftExtraData::decode(&encoded).is_err());
    }
}
