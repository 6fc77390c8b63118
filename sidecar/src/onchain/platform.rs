//! The platform's contract set: deploying it and wiring the permission matrix.
//!
//! The matrix comes from `contracts/matrix.json`, the single source the Solidity tests read
//! too. Deployment is idempotent: a contract recorded in the deployment file whose code is on
//! chain is kept; a matrix entry already set is not sent again. The deployment file is saved
//! after each contract, so an interrupted run resumes.

use std::{collections::BTreeMap, path::Path};

use alloy::{
    dyn_abi::DynSolValue,
    primitives::{Address, FixedBytes, U256, keccak256},
};
use serde::Deserialize;

use super::{Artifacts, ChainError, Client, Deployment};

/// Largest matrix file read.
const MAX_MATRIX_BYTES: u64 = 1024 * 1024;

/// The platform's contracts in deployment order.
pub const PLATFORM_CONTRACTS: [&str; 5] =
    ["EcropAccessManager", "InvestorRegistry", "SecuritiesRegister", "InstructionBook", "Custody"];

/// The permission matrix file.
#[derive(Debug, Clone, Deserialize)]
pub struct Matrix {
    /// Roles, by id (a partial file, such as the custody one, may leave them to another).
    #[serde(default)]
    pub roles: Vec<MatrixRole>,
    /// Restricted functions and the role that may call each.
    pub functions: Vec<MatrixFunction>,
    /// Roles granted to platform contracts themselves.
    #[serde(default, rename = "systemGrants")]
    pub system_grants: Vec<SystemGrant>,
}

/// A role of the matrix.
#[derive(Debug, Clone, Deserialize)]
pub struct MatrixRole {
    /// Role id in the access manager.
    pub id: u64,
    /// Name, e.g. `REGISTER_KEEPER`.
    pub name: String,
    /// Whether granting it needs four eyes.
    #[serde(default)]
    pub sensitive: bool,
    /// What it is for.
    #[serde(default)]
    pub description: String,
}

/// One restricted function.
#[derive(Debug, Clone, Deserialize)]
pub struct MatrixFunction {
    /// Contract name.
    pub target: String,
    /// Canonical signature, e.g. `issue(bytes12,address,uint256)`.
    pub signature: String,
    /// Role name.
    pub role: String,
}

/// A role held by a platform contract.
#[derive(Debug, Clone, Deserialize)]
pub struct SystemGrant {
    /// Role name.
    pub role: String,
    /// Contract name holding it.
    pub target: String,
}

impl Matrix {
    /// Reads and checks `path`: every function's role must be defined.
    pub fn load(path: &Path) -> Result<Self, ChainError> {
        let bad = |reason: String| ChainError::ArtifactInvalid {
            path: path.display().to_string(),
            reason,
        };
        let text = super::files::read_text(path, MAX_MATRIX_BYTES).map_err(bad)?;
        let matrix: Self = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        for f in &matrix.functions {
            matrix
                .role_id(&f.role)
                .map_err(|_| bad(format!("{} names unknown role {}", f.signature, f.role)))?;
        }
        for g in &matrix.system_grants {
            matrix
                .role_id(&g.role)
                .map_err(|_| bad(format!("system grant names unknown role {}", g.role)))?;
        }
        Ok(matrix)
    }

    /// Reads several matrix files into one: roles from all of them, functions and system
    /// grants appended in order. The functions' roles are checked once all are read.
    pub fn load_all(paths: &[std::path::PathBuf]) -> Result<Self, ChainError> {
        let mut merged =
            Self { roles: Vec::new(), functions: Vec::new(), system_grants: Vec::new() };
        for path in paths {
            let bad = |reason: String| ChainError::ArtifactInvalid {
                path: path.display().to_string(),
                reason,
            };
            let text = super::files::read_text(path, MAX_MATRIX_BYTES).map_err(bad)?;
            let part: Self = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
            for role in part.roles {
                if !merged.roles.iter().any(|r| r.id == role.id) {
                    merged.roles.push(role);
                }
            }
            merged.functions.extend(part.functions);
            merged.system_grants.extend(part.system_grants);
        }
        for f in &merged.functions {
            merged.role_id(&f.role)?;
        }
        for g in &merged.system_grants {
            merged.role_id(&g.role)?;
        }
        Ok(merged)
    }

    /// The id of role `name` (case-insensitive; `-` and `_` alike).
    pub fn role_id(&self, name: &str) -> Result<u64, ChainError> {
        let wanted = name.replace('-', "_").to_ascii_uppercase();
        self.roles.iter().find(|r| r.name == wanted).map(|r| r.id).ok_or_else(|| {
            ChainError::BadArgument {
                function: "role".into(),
                index: 1,
                value: name.to_owned(),
                ty: "role name".into(),
                reason: format!(
                    "known roles: {}",
                    self.roles.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            }
        })
    }

    /// The name of role `id`, or the number as text.
    pub fn role_name(&self, id: u64) -> String {
        if id == 0 {
            // OpenZeppelin's ADMIN_ROLE, held by the access manager itself.
            return "ADMIN (the manager itself)".to_owned();
        }
        self.roles.iter().find(|r| r.id == id).map_or_else(|| id.to_string(), |r| r.name.clone())
    }
}

/// The 4-byte selector of a canonical signature.
pub fn selector(signature: &str) -> FixedBytes<4> {
    FixedBytes::from_slice(&keccak256(signature.as_bytes())[..4])
}

/// What a deployment run did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct DeployReport {
    /// Contracts deployed in this run.
    pub deployed: Vec<String>,
    /// Contracts found on chain and kept.
    pub kept: Vec<String>,
    /// Matrix entries set in this run.
    pub functions_set: usize,
    /// Matrix entries already right.
    pub functions_kept: usize,
    /// System grants made in this run.
    pub grants_made: usize,
    /// The resulting addresses.
    pub contracts: BTreeMap<String, Address>,
}

/// Deploys the platform (what is missing) and wires the matrix (what differs).
pub async fn deploy(
    client: &Client,
    artifacts: &Artifacts,
    matrix: &Matrix,
    deployment_path: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<DeployReport, ChainError> {
    let chain_id = client.chain_id().await?;
    let mut deployment = Deployment::load_or_new(deployment_path, chain_id)?;
    let mut report = DeployReport::default();
    let admin = client.from()?;

    for (index, name) in PLATFORM_CONTRACTS.iter().enumerate() {
        let artifact = artifacts.get(name)?;
        if let Some(address) = deployment.contracts.get(*name).copied() {
            let code = client.code(address).await?;
            if !code.is_empty() {
                report.kept.push((*name).to_owned());
                continue;
            }
            progress(&format!("{name}: recorded at {address} but no code there; deploying again"));
        }
        let args = match *name {
            "EcropAccessManager" => vec![DynSolValue::Address(admin)],
            "InvestorRegistry" => {
                vec![DynSolValue::Address(deployment.address("EcropAccessManager")?)]
            }
            "SecuritiesRegister" => vec![
                DynSolValue::Address(deployment.address("EcropAccessManager")?),
                DynSolValue::Address(deployment.address("InvestorRegistry")?),
            ],
            "InstructionBook" => vec![
                DynSolValue::Address(deployment.address("EcropAccessManager")?),
                DynSolValue::Address(deployment.address("SecuritiesRegister")?),
            ],
            "Custody" => vec![DynSolValue::Address(deployment.address("EcropAccessManager")?)],
            other => return Err(ChainError::NotDeployed(other.to_owned())),
        };
        progress(&format!("deploying {name} ({}/{})", index + 1, PLATFORM_CONTRACTS.len()));
        let sent = client.deploy(&artifact, &args).await?;
        let address =
            sent.contract_address.ok_or_else(|| ChainError::NotDeployed((*name).to_owned()))?;
        if deployment.contracts.is_empty() || deployment.start_block == 0 {
            deployment.start_block = sent.block;
        }
        deployment.contracts.insert((*name).to_owned(), address);
        deployment.save(deployment_path)?;
        report.deployed.push((*name).to_owned());
    }

    wire_matrix(client, artifacts, matrix, &deployment, &mut report, progress).await?;
    report.contracts = deployment.contracts.clone();
    Ok(report)
}

async fn wire_matrix(
    client: &Client,
    artifacts: &Artifacts,
    matrix: &Matrix,
    deployment: &Deployment,
    report: &mut DeployReport,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), ChainError> {
    let manager_name = "EcropAccessManager";
    let manager = deployment.address(manager_name)?;
    let abi = artifacts.get(manager_name)?.abi;

    // Group the entries that differ by (target, role): one transaction per group.
    let mut pending: BTreeMap<(Address, u64), Vec<DynSolValue>> = BTreeMap::new();
    for f in &matrix.functions {
        let target = deployment.address(&f.target)?;
        let role = matrix.role_id(&f.role)?;
        let sel = selector(&f.signature);
        let current = client
            .call(
                manager_name,
                &abi,
                manager,
                "getTargetFunctionRole",
                &[DynSolValue::Address(target), DynSolValue::FixedBytes(pad(sel), 4)],
                None,
            )
            .await?;
        if matches!(current.first(), Some(DynSolValue::Uint(v, _)) if *v == U256::from(role)) {
            report.functions_kept += 1;
        } else {
            pending.entry((target, role)).or_default().push(DynSolValue::FixedBytes(pad(sel), 4));
        }
    }
    for ((target, role), selectors) in pending {
        progress(&format!(
            "matrix: {} function(s) of {target} to {}",
            selectors.len(),
            matrix.role_name(role)
        ));
        let count = selectors.len();
        client
            .send(
                manager_name,
                &abi,
                manager,
                "setTargetFunctionRole",
                &[
                    DynSolValue::Address(target),
                    DynSolValue::Array(selectors),
                    DynSolValue::Uint(U256::from(role), 64),
                ],
            )
            .await?;
        report.functions_set += count;
    }

    // Which roles need four eyes, and their names in the manager's events.
    for role in &matrix.roles {
        let id = DynSolValue::Uint(U256::from(role.id), 64);
        let current = client
            .call(manager_name, &abi, manager, "isRoleSensitive", std::slice::from_ref(&id), None)
            .await?;
        if !matches!(current.first(), Some(DynSolValue::Bool(b)) if *b == role.sensitive) {
            progress(&format!(
                "role {}: four eyes {}",
                role.name,
                if role.sensitive { "on" } else { "off" }
            ));
            client
                .send(
                    manager_name,
                    &abi,
                    manager,
                    "setRoleSensitive",
                    &[id.clone(), DynSolValue::Bool(role.sensitive)],
                )
                .await?;
        }
        if report.deployed.iter().any(|d| d == manager_name) {
            client
                .send(
                    manager_name,
                    &abi,
                    manager,
                    "labelRole",
                    &[id, DynSolValue::String(role.name.clone())],
                )
                .await?;
        }
    }

    for grant in &matrix.system_grants {
        let role = matrix.role_id(&grant.role)?;
        let account = deployment.address(&grant.target)?;
        let held = client
            .call(
                manager_name,
                &abi,
                manager,
                "hasRole",
                &[DynSolValue::Uint(U256::from(role), 64), DynSolValue::Address(account)],
                None,
            )
            .await?;
        if matches!(held.first(), Some(DynSolValue::Bool(true))) {
            continue;
        }
        progress(&format!("granting {} to {}", grant.role, grant.target));
        client
            .send(
                manager_name,
                &abi,
                manager,
                "grantRole",
                &[
                    DynSolValue::Uint(U256::from(role), 64),
                    DynSolValue::Address(account),
                    DynSolValue::Uint(U256::ZERO, 32),
                ],
            )
            .await?;
        report.grants_made += 1;
    }
    Ok(())
}

fn pad(selector: FixedBytes<4>) -> FixedBytes<32> {
    let mut word = [0u8; 32];
    word[..4].copy_from_slice(selector.as_slice());
    FixedBytes(word)
}
