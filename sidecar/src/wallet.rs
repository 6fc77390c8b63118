//! The sidecar's signing service: fills a dApp's unsigned transaction (chain id, nonce, gas,
//! fees), signs it in the token and submits it, and signs messages and typed data.
//!
//! Persists nothing. Fails closed: a transaction that cannot be filled, signed or checked is
//! refused, never sent half-done. Logs transaction hashes and accounts, never payloads.
//!
//! Every signature is checked against the [`SigningPolicy`] for the calling client first:
//! before the token is touched and before a nonce is taken, so a refused request leaves no
//! trace in the nonce sequence.

use std::sync::Arc;

use alloy::{
    consensus::TxEnvelope,
    dyn_abi::TypedData,
    eips::{BlockId, Encodable2718},
    network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder},
    primitives::{Address, B256, Bytes, Signature, TxKind, U256},
    providers::{Provider, SendableTx},
    rpc::types::{AccessList, TransactionRequest},
    signers::Signer,
};
use serde_json::value::RawValue;
use tokio::sync::OnceCell;

use crate::{
    api::Caller,
    nonce::{NonceManager, NonceSlot},
    signer::{HsmSigner, KeyInfo, Keyring, SignerError},
    signing_policy::{PolicyRefusal, SigningPolicy},
    upstream::{Upstream, UpstreamError},
};

/// Upstream error messages that mean the nonce the sidecar used is already taken on chain;
/// matched case-insensitively (geth, anvil and Besu all say "nonce too low").
/// Only "nonce too low" qualifies: it proves the node kept nothing of the refused attempt,
/// whereas "already known" would mean the node holds it and a retry would send twice.
const NONCE_TAKEN_MARKERS: [&str; 1] = ["nonce too low"];

/// Why a wallet operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// The request lacks a `from` address.
    #[error("missing from address")]
    MissingFrom,
    /// The request's chain id is not the node's.
    #[error("chain id mismatch (request {requested}, node {node})")]
    ChainIdMismatch {
        /// Chain id in the request.
        requested: u64,
        /// Chain id of the upstream node.
        node: u64,
    },
    /// A transaction type the sidecar does not sign.
    #[error("transaction type not supported ({0}); legacy (0), EIP-2930 (1) and EIP-1559 (2) are")]
    UnsupportedType(u8),
    /// The request is contradictory or out of range.
    #[error("invalid transaction: {0}")]
    Invalid(String),
    /// The filled request still does not make a transaction.
    #[error("transaction incomplete: {0}")]
    Incomplete(String),
    /// Typed data could not be parsed or hashed.
    #[error("invalid typed data: {0}")]
    TypedData(String),
    /// The token or key refused.
    #[error(transparent)]
    Signer(#[from] SignerError),
    /// Signing failed for a reason outside the token (reported by alloy's signer layer).
    #[error("signing failed: {0}")]
    Signing(String),
    /// The node refused or could not be reached.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The sidecar's transaction policy refused the sender or the target.
    #[error("transaction rejected: {0}")]
    Rejected(String),
    /// The signing policy of the key refused the request; names the rule.
    #[error(transparent)]
    PolicyRefused(#[from] PolicyRefusal),
    /// The node returned a different hash than the one signed.
    #[error("node returned hash ({returned}) for a transaction signed as ({signed})")]
    HashMismatch {
        /// Hash computed locally.
        signed: B256,
        /// Hash the node returned.
        returned: String,
    },
}

impl WalletError {
    /// Recovers the token's own error from alloy's signer error where it carries one.
    fn from_signer(error: alloy::signers::Error) -> Self {
        match error {
            alloy::signers::Error::Other(inner) => match inner.downcast::<SignerError>() {
                Ok(own) => Self::Signer(*own),
                Err(other) => Self::Signing(other.to_string()),
            },
            other => Self::Signing(other.to_string()),
        }
    }

    fn upstream_transport(error: alloy::transports::TransportError, url: &str) -> Self {
        match error {
            alloy::transports::RpcError::ErrorResp(payload) => Self::Upstream(UpstreamError::Rpc {
                code: payload.code,
                message: payload.message.into_owned(),
                data: payload.data,
            }),
            other => Self::Upstream(UpstreamError::Unreachable {
                url: url.to_owned(),
                reason: other.to_string(),
            }),
        }
    }
}

/// A rule every transaction must pass before the wallet signs it, such as the consortium's
/// account allowlist. Checked right after the sender is known, before the token is touched.
pub trait TransactionPolicy: Send + Sync + std::fmt::Debug {
    /// `Ok` to go on; `Err` with a sentence naming the account (and, where it matters, the
    /// target and the block the decision is for), which becomes [`WalletError::Rejected`].
    /// `to` is `None` for a contract creation.
    fn check(&self, from: Address, to: Option<Address>) -> Result<(), String>;
}

/// Fills, signs and submits on behalf of the token's accounts.
#[derive(Debug)]
pub struct Wallet {
    keyring: Keyring,
    upstream: Arc<Upstream>,
    nonces: NonceManager,
    chain_id: OnceCell<u64>,
    policy: Option<Arc<dyn TransactionPolicy>>,
    signing: SigningPolicy,
}

impl Wallet {
    /// Creates the service.
    pub fn new(keyring: Keyring, upstream: Arc<Upstream>) -> Self {
        Self {
            keyring,
            upstream,
            nonces: NonceManager::new(),
            chain_id: OnceCell::new(),
            policy: None,
            signing: SigningPolicy::default(),
        }
    }

    /// Checks every transaction against `policy` before signing it.
    pub fn with_policy(mut self, policy: Arc<dyn TransactionPolicy>) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Checks every signature against `policy` (per key: clients, targets, functions, value
    /// caps, messages). Without it every key signs anything.
    pub fn with_signing_policy(mut self, policy: SigningPolicy) -> Self {
        self.signing = policy;
        self
    }

    /// The keyring.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The upstream node.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// A shared handle to the upstream node.
    pub fn upstream_handle(&self) -> Arc<Upstream> {
        self.upstream.clone()
    }

    /// The token's accounts, sorted by key label.
    /// Keys are listed from the token afresh, so keys generated while the sidecar runs appear.
    pub async fn accounts(&self) -> Result<Vec<KeyInfo>, WalletError> {
        Ok(self.keyring.refresh().await?)
    }

    /// Fills, signs and submits `request`; returns the transaction hash the node accepted.
    ///
    /// The sender's nonce slot is held from nonce assignment until the node answered, so
    /// concurrent sends from one account get consecutive nonces. After a refusal the nonce is
    /// read from the chain again; if the refusal said the nonce was already used, the send is
    /// retried once with the fresh nonce (the node kept nothing of the refused attempt).
    ///
    /// `caller` is the authenticated client, checked against the key's signing policy.
    pub async fn send_transaction(
        &self,
        request: TransactionRequest,
        caller: Option<&Caller>,
    ) -> Result<B256, WalletError> {
        let explicit_nonce = request.nonce;
        let (signer, request) = self.prepare(request, caller).await?;
        let from = signer.address();
        let mut slot = self.nonces.acquire(from).await;

        let mut retried = false;
        loop {
            let nonce = match explicit_nonce {
                Some(n) => n,
                None => self.next_nonce(&slot, from).await?,
            };
            let envelope = self.sign(&signer, request.clone().with_nonce(nonce)).await?;
            let hash = *envelope.tx_hash();

            match self.submit(&envelope).await {
                Ok(()) => {
                    if explicit_nonce.is_some() {
                        slot.resync();
                    } else {
                        slot.accepted(nonce);
                    }
                    tracing::debug!(target: "ecrop::wallet", %from, nonce, %hash, "transaction submitted");
                    return Ok(hash);
                }
                Err(error) => {
                    slot.resync();
                    let taken = nonce_taken(&error);
                    tracing::debug!(target: "ecrop::wallet", %from, nonce, %error, retry = taken && !retried, "submission refused");
                    if taken && !retried && explicit_nonce.is_none() {
                        retried = true;
                        continue;
                    }
                    return Err(error);
                }
            }
        }
    }

    /// Fills and signs `request` without submitting it; returns the EIP-2718 encoding.
    ///
    /// The nonce is the account's next one but is not reserved: a later send may use it.
    /// `caller` is the authenticated client, checked against the key's signing policy.
    pub async fn sign_transaction(
        &self,
        request: TransactionRequest,
        caller: Option<&Caller>,
    ) -> Result<Bytes, WalletError> {
        let explicit_nonce = request.nonce;
        let (signer, request) = self.prepare(request, caller).await?;
        let nonce = match explicit_nonce {
            Some(n) => n,
            None => {
                let slot = self.nonces.acquire(signer.address()).await;
                self.next_nonce(&slot, signer.address()).await?
            }
        };
        let envelope = self.sign(&signer, request.with_nonce(nonce)).await?;
        Ok(envelope.encoded_2718().into())
    }

    /// Signs `message` as an EIP-191 personal message with `address`'s key, if the key's
    /// signing policy lets `caller` sign messages with it.
    pub async fn sign_message(
        &self,
        address: Address,
        message: &[u8],
        caller: Option<&Caller>,
    ) -> Result<Signature, WalletError> {
        self.check_message_policy(caller, address)?;
        let signer = self.keyring.signer(address).await?;
        signer.sign_message(message).await.map_err(WalletError::from_signer)
    }

    /// Signs EIP-712 typed data with `address`'s key.
    ///
    /// The key is looked up first, so data for an account the token does not hold costs no
    /// hashing; the hash is computed on the blocking pool, off the async workers. A domain
    /// naming another chain than the node's is refused. Typed data counts as a message for the
    /// key's signing policy.
    pub async fn sign_typed_data(
        &self,
        address: Address,
        data: TypedData,
        caller: Option<&Caller>,
    ) -> Result<Signature, WalletError> {
        self.check_message_policy(caller, address)?;
        let signer = self.keyring.signer(address).await?;
        if let Some(domain_chain) = data.domain.chain_id {
            let node = self.chain_id().await?;
            if domain_chain != alloy::primitives::U256::from(node) {
                return Err(WalletError::TypedData(format!(
                    "domain chain id ({domain_chain}) is not the node's ({node})"
                )));
            }
        }
        let hash = tokio::task::spawn_blocking(move || data.eip712_signing_hash())
            .await
            .map_err(|e| WalletError::TypedData(format!("hashing task failed: {e}")))?
            .map_err(|e| WalletError::TypedData(e.to_string()))?;
        signer.sign_hash(&hash).await.map_err(WalletError::from_signer)
    }

    /// The node's chain id, asked once.
    pub async fn chain_id(&self) -> Result<u64, WalletError> {
        self.chain_id
            .get_or_try_init(|| async {
                self.upstream
                    .provider()
                    .get_chain_id()
                    .await
                    .map_err(|e| WalletError::upstream_transport(e, self.upstream.url().as_str()))
            })
            .await
            .copied()
    }

    /// Checks the request against both policies, finds its key and fills chain id, gas and
    /// fees (not the nonce).
    async fn prepare(
        &self,
        mut request: TransactionRequest,
        caller: Option<&Caller>,
    ) -> Result<(HsmSigner, TransactionRequest), WalletError> {
        let from = request.from.ok_or(WalletError::MissingFrom)?;
        let to = match request.to {
            Some(TxKind::Call(to)) => Some(to),
            None | Some(TxKind::Create) => None,
        };
        if let Some(policy) = &self.policy {
            policy.check(from, to).map_err(WalletError::Rejected)?;
        }

        // Ambiguous requests are refused rather than signed with one reading of them.
        if let (Some(data), Some(input)) = (&request.input.data, &request.input.input)
            && data != input
        {
            return Err(WalletError::Invalid("both data and input given, and they differ".into()));
        }

        // Filling adds chain id, gas and fees only: sender, recipient, value and input are
        // final here, so the policy judges what will be signed.
        let input = request.input.input().map_or(&[][..], |bytes| bytes.as_ref());
        let value = request.value.unwrap_or(U256::ZERO);
        self.signing.check_transaction(caller, from, to, input, value).map_err(|refusal| {
            tracing::debug!(target: "ecrop::wallet", %from, client = caller.map(|c| c.client.as_str()), rule = %refusal.rule, "signing policy refused a transaction");
            WalletError::PolicyRefused(refusal)
        })?;
        let signer = self.keyring.signer(from).await?;
        if request.gas_price.is_some()
            && (request.max_fee_per_gas.is_some() || request.max_priority_fee_per_gas.is_some())
        {
            return Err(WalletError::Invalid(
                "gasPrice cannot be combined with maxFeePerGas or maxPriorityFeePerGas".into(),
            ));
        }
        if request.nonce == Some(u64::MAX) {
            return Err(WalletError::Invalid("nonce 2^64-1 is not allowed (EIP-2681)".into()));
        }

        // No recipient means a contract creation, as in every node's eth_sendTransaction.
        if request.to.is_none() {
            request.to = Some(TxKind::Create);
        }

        let node = self.chain_id().await?;
        match request.chain_id {
            Some(requested) if requested != node => {
                return Err(WalletError::ChainIdMismatch { requested, node });
            }
            _ => request.chain_id = Some(node),
        }

        if request.sidecar.is_some()
            || request.blob_versioned_hashes.is_some()
            || request.max_fee_per_blob_gas.is_some()
        {
            return Err(WalletError::UnsupportedType(3));
        }
        if request.authorization_list.is_some() {
            return Err(WalletError::UnsupportedType(4));
        }
        match request.transaction_type {
            None | Some(2) => {}
            Some(ty @ (0 | 1)) => {
                if request.gas_price.is_none() {
                    let price = self.upstream.provider().get_gas_price().await.map_err(|e| {
                        WalletError::upstream_transport(e, self.upstream.url().as_str())
                    })?;
                    request.gas_price = Some(price);
                }
                if ty == 1 && request.access_list.is_none() {
                    request.access_list = Some(AccessList::default());
                }
            }
            Some(other) => return Err(WalletError::UnsupportedType(other)),
        }

        // Gas is estimated without a nonce so the estimate runs outside the nonce slot.
        let nonce = request.nonce.take();
        let filled = self
            .upstream
            .provider()
            .fill(request)
            .await
            .map_err(|e| WalletError::upstream_transport(e, self.upstream.url().as_str()))?;
        let SendableTx::Builder(mut request) = filled else {
            return Err(WalletError::Incomplete("filler returned an envelope".into()));
        };
        request.nonce = nonce;
        Ok((signer, request))
    }

    fn check_message_policy(
        &self,
        caller: Option<&Caller>,
        from: Address,
    ) -> Result<(), WalletError> {
        self.signing.check_message(caller, from).map_err(|refusal| {
            tracing::debug!(target: "ecrop::wallet", %from, client = caller.map(|c| c.client.as_str()), rule = %refusal.rule, "signing policy refused a message");
            WalletError::PolicyRefused(refusal)
        })
    }

    /// Refuses a request that still lacks fields after filling, naming them.
    fn check_complete(request: &TransactionRequest) -> Result<(), WalletError> {
        match request.missing_keys() {
            Ok(_) => Ok(()),
            Err((ty, missing)) => Err(WalletError::Incomplete(format!(
                "{ty} transaction lacks {}",
                missing.join(", ")
            ))),
        }
    }

    async fn next_nonce(&self, slot: &NonceSlot, from: Address) -> Result<u64, WalletError> {
        if let Some(next) = slot.cached() {
            return Ok(next);
        }
        let count = self
            .upstream
            .provider()
            .get_transaction_count(from)
            .block_id(BlockId::pending())
            .await
            .map_err(|e| WalletError::upstream_transport(e, self.upstream.url().as_str()))?;
        tracing::debug!(target: "ecrop::nonce", %from, nonce = count, "nonce read from chain");
        Ok(count)
    }

    async fn sign(
        &self,
        signer: &HsmSigner,
        request: TransactionRequest,
    ) -> Result<TxEnvelope, WalletError> {
        Self::check_complete(&request)?;
        let wallet = EthereumWallet::from(signer.clone());
        request.build(&wallet).await.map_err(|e| match e {
            alloy::network::TransactionBuilderError::Signer(inner) => {
                WalletError::from_signer(inner)
            }
            other => WalletError::Incomplete(other.to_string()),
        })
    }

    async fn submit(&self, envelope: &TxEnvelope) -> Result<(), WalletError> {
        let raw = format!("[\"0x{}\"]", hex::encode(envelope.encoded_2718()));
        let params = RawValue::from_string(raw)
            .map_err(|e| WalletError::Incomplete(format!("encoding params: {e}")))?;
        let returned = self.upstream.forward("eth_sendRawTransaction", Some(&params)).await?;
        let signed = *envelope.tx_hash();
        let returned_hash: Option<B256> = serde_json::from_str(returned.get()).ok();
        if returned_hash != Some(signed) {
            return Err(WalletError::HashMismatch { signed, returned: returned.get().to_owned() });
        }
        Ok(())
    }
}

fn nonce_taken(error: &WalletError) -> bool {
    let WalletError::Upstream(UpstreamError::Rpc { message, .. }) = error else {
        return false;
    };
    let message = message.to_ascii_lowercase();
    NONCE_TAKEN_MARKERS.iter().any(|marker| message.contains(marker))
}
