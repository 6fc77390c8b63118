//! [`HsmSigner`]: one token key behind alloy's signer traits.

use std::fmt;

use alloy::consensus::SignableTransaction;
use alloy::network::TxSigner;
use alloy::primitives::{Address, B256, ChainId, Signature};
use alloy::signers::Signer;
use async_trait::async_trait;

use super::{KeyInfo, SignerError, Token};

/// Signs with one key of a [`Token`], through alloy's [`Signer`] and [`TxSigner`] traits.
///
/// Which bytes are signed:
/// - [`Signer::sign_hash`]: the 32-byte hash as given;
/// - [`Signer::sign_message`]: `keccak256("\x19Ethereum Signed Message:\n" || len || message)`
///   (EIP-191, what `eth_sign` and `personal_sign` sign);
/// - [`Signer::sign_dynamic_typed_data`]: the EIP-712 signing hash of the typed data (what
///   `eth_signTypedData_v4` signs);
/// - [`TxSigner::sign_transaction`]: the transaction's signature hash. If the signer has a
///   chain id, a transaction without one gets it (EIP-155 for legacy transactions) and a
///   transaction with a different one is refused.
///
/// The chain id affects transaction signing only. PKCS#11 work runs on tokio's blocking pool.
#[derive(Clone)]
pub struct HsmSigner {
    token: Token,
    key: KeyInfo,
    chain_id: Option<ChainId>,
}

impl fmt::Debug for HsmSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HsmSigner")
            .field("token", &self.token.label())
            .field("key", &self.key.label)
            .field("address", &self.key.address)
            .field("chain_id", &self.chain_id)
            .finish()
    }
}

impl HsmSigner {
    /// A signer for `key` in `token`, without a chain id.
    pub fn new(token: Token, key: KeyInfo) -> Self {
        Self { token, key, chain_id: None }
    }

    /// The key this signer signs with.
    pub fn key(&self) -> &KeyInfo {
        &self.key
    }

    /// The token the key lives in.
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// Signs a 32-byte prehash in the token on tokio's blocking pool; see
    /// [`Token::sign_prehash`].
    pub async fn sign_prehash(&self, hash: B256) -> Result<Signature, SignerError> {
        let token = self.token.clone();
        let key = self.key.clone();
        tokio::task::spawn_blocking(move || token.sign_prehash(&key, &hash))
            .await
            .map_err(|e| SignerError::Task(e.to_string()))?
    }
}

#[async_trait]
impl Signer for HsmSigner {
    async fn sign_hash(&self, hash: &B256) -> alloy::signers::Result<Signature> {
        self.sign_prehash(*hash).await.map_err(alloy::signers::Error::other)
    }

    fn address(&self) -> Address {
        self.key.address
    }

    fn chain_id(&self) -> Option<ChainId> {
        self.chain_id
    }

    fn set_chain_id(&mut self, chain_id: Option<ChainId>) {
        self.chain_id = chain_id;
    }
}

#[async_trait]
impl TxSigner<Signature> for HsmSigner {
    fn address(&self) -> Address {
        self.key.address
    }

    async fn sign_transaction(
        &self,
        tx: &mut dyn SignableTransaction<Signature>,
    ) -> alloy::signers::Result<Signature> {
        if let Some(chain_id) = self.chain_id
            && !tx.set_chain_id_checked(chain_id)
        {
            return Err(alloy::signers::Error::TransactionChainIdMismatch {
                signer: chain_id,
                // `set_chain_id_checked` fails only when the transaction has a chain id.
                tx: tx.chain_id().unwrap_or_default(),
            });
        }
        let hash = tx.signature_hash();
        self.sign_hash(&hash).await
    }
}
