//! Contracts in the genesis `alloc`: their constructors are executed with revm, so the code
//! and storage placed at block 0 are what a live deployment of the same creation code by the
//! same deployer would leave.
//!
//! The deployer sends one creation per contract with nonces 0, 1, 2, ..., so each contract
//! lands at the address a live deployment from a fresh account would give it. The deployer's
//! account then carries the next nonce in `alloc`, so its first live transaction cannot
//! collide with a pre-deployed address. Constructors run at block 0 with timestamp 0; a
//! constructor that records the block number or time stores those values.

use std::collections::BTreeMap;

use alloy::dyn_abi::{DynSolValue, JsonAbiExt};
use alloy::primitives::{Address, B256, Bytes, U256};
use revm::context::TxEnv;
use revm::context::result::{ExecutionResult, Output};
use revm::database::{CacheDB, EmptyDB};
use revm::primitives::TxKind;
use revm::primitives::hardfork::SpecId;
use revm::{Context, ExecuteCommitEvm, MainBuilder, MainContext};

use super::GenesisError;
use crate::onchain::{Artifacts, PLATFORM_CONTRACTS};

/// Gas given to each constructor: far above any contract here, below nothing that matters,
/// because gas is free and the execution happens once, offline.
const CONSTRUCTOR_GAS: u64 = 1_000_000_000;

/// One contract to pre-deploy: its name and creation code with encoded constructor arguments.
#[derive(Debug, Clone)]
pub struct Creation {
    /// Contract name (for messages and the deployment record).
    pub name: String,
    /// Creation code followed by the ABI-encoded constructor arguments.
    pub init_code: Bytes,
}

/// A contract as its constructor left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Predeployed {
    /// Contract name.
    pub name: String,
    /// Address: the deployer's `CREATE` address for the contract's nonce.
    pub address: Address,
    /// Runtime code.
    pub code: Bytes,
    /// Every storage slot the constructor wrote, with its final value (zero values omitted).
    pub storage: BTreeMap<B256, B256>,
}

/// Executes the creations in order from `deployer` (nonces 0, 1, ...) on an empty state of
/// chain `chain_id` under the Cancun rules the contracts are compiled for.
pub fn execute(
    chain_id: u64,
    deployer: Address,
    creations: &[Creation],
) -> Result<Vec<Predeployed>, GenesisError> {
    let mut evm = Context::mainnet()
        .modify_cfg_chained(|cfg| {
            cfg.chain_id = chain_id;
            cfg.set_spec_and_mainnet_gas_params(SpecId::CANCUN);
        })
        .modify_block_chained(|block| {
            block.number = U256::ZERO;
            block.timestamp = U256::ZERO;
            block.basefee = 0;
            block.gas_limit = CONSTRUCTOR_GAS;
        })
        .with_db(CacheDB::<EmptyDB>::default())
        .build_mainnet();

    let mut addresses = Vec::with_capacity(creations.len());
    for (nonce, creation) in (0u64..).zip(creations) {
        let failed =
            |reason: String| GenesisError::Predeploy { contract: creation.name.clone(), reason };
        let tx = TxEnv::builder()
            .caller(deployer)
            .kind(TxKind::Create)
            .data(creation.init_code.clone())
            .nonce(nonce)
            .chain_id(Some(chain_id))
            .gas_limit(CONSTRUCTOR_GAS)
            .gas_price(0)
            .build()
            .map_err(|e| failed(format!("{e:?}")))?;
        let result = evm.transact_commit(tx).map_err(|e| failed(e.to_string()))?;
        let address = match result {
            ExecutionResult::Success { output: Output::Create(_, Some(address)), .. } => address,
            ExecutionResult::Revert { output, .. } => {
                return Err(failed(format!("constructor reverted (0x{output:x})")));
            }
            other => return Err(failed(format!("constructor failed ({other:?})"))),
        };
        if address != deployer.create(nonce) {
            return Err(failed(format!(
                "created at {address}, expected {}",
                deployer.create(nonce)
            )));
        }
        addresses.push(address);
    }

    let db = &evm.ctx.journaled_state.database;
    let mut out = Vec::with_capacity(addresses.len());
    for (creation, address) in creations.iter().zip(addresses) {
        let missing = || GenesisError::Predeploy {
            contract: creation.name.clone(),
            reason: "no account after execution".into(),
        };
        let account = db.cache.accounts.get(&address).ok_or_else(missing)?;
        let code = account.info.code.as_ref().map(|c| c.original_bytes()).ok_or_else(missing)?;
        let storage = account
            .storage
            .iter()
            .filter(|(_, value)| !value.is_zero())
            .map(|(slot, value)| (B256::from(*slot), B256::from(*value)))
            .collect();
        out.push(Predeployed { name: creation.name.clone(), address, code, storage });
    }
    Ok(out)
}

/// The platform's contracts (`onchain::PLATFORM_CONTRACTS`) with the constructor arguments
/// `ecrop contracts deploy` passes, for a deployment by `admin` from nonce 0.
pub fn platform_creations(
    artifacts: &Artifacts,
    admin: Address,
) -> Result<Vec<Creation>, GenesisError> {
    let at = |nonce: u64| DynSolValue::Address(admin.create(nonce));
    let mut creations = Vec::with_capacity(PLATFORM_CONTRACTS.len());
    for name in PLATFORM_CONTRACTS {
        let failed = |reason: String| GenesisError::Predeploy { contract: name.into(), reason };
        let args = match name {
            "EcropAccessManager" => vec![DynSolValue::Address(admin)],
            "InvestorRegistry" | "Custody" => vec![at(0)],
            "SecuritiesRegister" => vec![at(0), at(1)],
            "InstructionBook" => vec![at(0), at(2)],
            other => return Err(failed(format!("no constructor arguments known for {other}"))),
        };
        let artifact = artifacts.get(name).map_err(|e| failed(e.to_string()))?;
        if artifact.bytecode.is_empty() {
            return Err(failed("no creation bytecode".into()));
        }
        let mut code = artifact.bytecode.to_vec();
        if let Some(constructor) = &artifact.abi.constructor {
            code.extend(constructor.abi_encode_input(&args).map_err(|e| failed(e.to_string()))?);
        }
        creations.push(Creation { name: name.to_owned(), init_code: code.into() });
    }
    Ok(creations)
}
