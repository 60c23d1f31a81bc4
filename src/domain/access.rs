//! Who is calling: API keys (stored only as SHA-256 hashes), roles and what each may do.

use chrono::Utc;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::db::{DbPool, models, queries};
use crate::error::{AppError, AppResult};

/// What a key may do. `admin`: everything; `support`: read everything, no mutations;
/// `customer`: bound to one user, reads only that user's orders; `merchant`: bound to one
/// merchant, creates and manages only its own stores' orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Support,
    Customer,
    Merchant,
    /// The payment provider, authenticated by a callback signature; never a key's role.
    Provider,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Support => "support",
            Role::Customer => "customer",
            Role::Merchant => "merchant",
            Role::Provider => "provider",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Role::Admin),
            "support" => Some(Role::Support),
            "customer" => Some(Role::Customer),
            "merchant" => Some(Role::Merchant),
            _ => None,
        }
    }
}

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: i64,
    /// The key's name; recorded as the actor of events.
    pub name: String,
    pub role: Role,
    /// Set for customer keys: the only user whose data they see.
    pub user_id: Option<i64>,
    /// Set for merchant keys: the only merchant whose stores' orders they see.
    pub merchant_id: Option<Uuid>,
    /// The client's Idempotency-Key, scoped to its API key, when it sent one: work that
    /// must happen once per request (a refund) is tied to it, so a retry finds it.
    pub request_key: Option<String>,
}

impl Caller {
    /// A caller for command-line tools (seeding); never reachable over HTTP.
    pub fn system() -> Self {
        Caller {
            key_id: 0,
            name: "system".to_owned(),
            role: Role::Admin,
            user_id: None,
            merchant_id: None,
            request_key: None,
        }
    }

    /// Whether this key sees only part of the data (a customer's or a merchant's), as
    /// opposed to staff keys that see everything.
    pub fn is_confined(&self) -> bool {
        match self.role {
            Role::Customer | Role::Merchant => true,
            Role::Admin | Role::Support | Role::Provider => false,
        }
    }

    /// The user a customer key is confined to; `None` for other keys.
    pub fn confined_to(&self) -> Option<i64> {
        match self.role {
            Role::Customer => self.user_id.or(Some(0)),
            Role::Admin | Role::Support | Role::Provider | Role::Merchant => None,
        }
    }

    /// The merchant a merchant key is confined to (the nil UUID, matching nothing, if the
    /// key lost its binding); `None` for other keys.
    pub fn confined_to_merchant(&self) -> Option<Uuid> {
        match self.role {
            Role::Merchant => self.merchant_id.or(Some(Uuid::nil())),
            Role::Admin | Role::Support | Role::Provider | Role::Customer => None,
        }
    }

    /// Whether this caller may read the data of `user_id` on its own (not as the buyer of
    /// one of its orders): staff, and a customer key for its own user.
    pub fn can_read_user(&self, user_id: i64) -> bool {
        match self.role {
            Role::Merchant => false,
            _ => self.confined_to().is_none_or(|own| own == user_id),
        }
    }

    /// The key name `name` as this caller may see it: staff keys see every name; keys bound
    /// to a user or a merchant see their own name, the provider's, and `staff` for any
    /// other key. Events, refund-request histories and payment requests all show actors so.
    pub fn shown_name(&self, name: &str) -> String {
        if !self.is_confined() || name == self.name || name == super::events::PROVIDER_ACTOR {
            name.to_owned()
        } else {
            "staff".to_owned()
        }
    }

    /// Whether this caller may see `order`: staff all; a customer its user's orders; a
    /// merchant its stores' orders. Everything an order nests follows this rule.
    pub fn can_see_order(&self, order: &models::Order) -> bool {
        match self.role {
            Role::Admin | Role::Support | Role::Provider => true,
            Role::Customer => self.user_id.is_some() && order.user_id == self.user_id,
            Role::Merchant => self.merchant_id.is_some() && order.merchant_id == self.merchant_id,
        }
    }

    /// The payment provider reporting an outcome through a signed callback.
    pub fn provider() -> Self {
        Caller {
            key_id: 0,
            name: super::events::PROVIDER_ACTOR.to_owned(),
            role: Role::Provider,
            user_id: None,
            merchant_id: None,
            request_key: None,
        }
    }

    /// Payment outcomes: admins, and the provider itself.
    pub fn require_admin_or_provider(&self, action: &str) -> AppResult<()> {
        match self.role {
            Role::Admin | Role::Provider => Ok(()),
            _ => Err(AppError::Forbidden(format!(
                "{action} requires an admin key; this key has role {}",
                self.role.as_str()
            ))),
        }
    }

    /// Admin-only operations.
    pub fn require_admin(&self, action: &str) -> AppResult<()> {
        match self.role {
            Role::Admin => Ok(()),
            _ => Err(AppError::Forbidden(format!(
                "{action} requires an admin key; this key has role {}",
                self.role.as_str()
            ))),
        }
    }

    /// Operations an admin may do for anyone and a customer only for its own user.
    pub fn require_admin_or_owner(&self, action: &str, user_id: Option<i64>) -> AppResult<()> {
        match self.role {
            Role::Admin => Ok(()),
            Role::Customer if self.user_id.is_some() && self.user_id == user_id => Ok(()),
            _ => {
                Err(AppError::Forbidden(format!("{action} is not allowed for a key with role {}", self.role.as_str())))
            }
        }
    }
}

/// The prefix every key starts with, so leaked keys are easy to recognise.
pub const KEY_PREFIX: &str = "bk_";

pub fn hash_key(raw: &str) -> String {
    hex::encode(Sha256::digest(raw.as_bytes()))
}

/// Random bytes in a key (shown as twice as many lower-case hex digits).
const KEY_BYTES: usize = 24;

fn generate_key() -> String {
    let mut bytes = [0u8; KEY_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

/// Resolves a raw bearer key to its caller; unknown or revoked keys are UNAUTHENTICATED.
pub async fn authenticate(pool: &DbPool, raw_key: &str) -> AppResult<Caller> {
    let invalid = || AppError::Unauthenticated("the API key is not valid or has been revoked".to_owned());
    // Only the shape keys are made in can match: anything else costs no lookup.
    let well_formed = raw_key.strip_prefix(KEY_PREFIX).is_some_and(|secret| {
        secret.len() == 2 * KEY_BYTES && secret.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if !well_formed {
        return Err(invalid());
    }
    let mut conn = pool.get().await?;
    let key = queries::find_active_key_by_hash(&mut conn, &hash_key(raw_key)).await?.ok_or_else(invalid)?;
    let role = Role::parse(&key.role)
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("api key {} has unknown role {:?}", key.id, key.role)))?;
    Ok(Caller {
        key_id: key.id,
        name: key.name,
        role,
        user_id: key.user_id,
        merchant_id: key.merchant_id,
        request_key: None,
    })
}

/// A newly created key: the raw secret is shown once and never stored.
#[derive(Debug)]
pub struct CreatedKey {
    pub key: models::ApiKey,
    pub raw: String,
}

pub async fn create_key(
    pool: &DbPool,
    role: Role,
    user_id: Option<i64>,
    merchant_id: Option<Uuid>,
    name: Option<&str>,
) -> AppResult<CreatedKey> {
    match (role, user_id, merchant_id) {
        (Role::Customer, None, _) => return Err(AppError::bad_input("a customer key needs --user <id>")),
        (Role::Merchant, _, None) => return Err(AppError::bad_input("a merchant key needs --merchant <uuid>")),
        (Role::Admin | Role::Support | Role::Merchant | Role::Provider, Some(_), _) => {
            return Err(AppError::bad_input("only customer keys are bound to a user; drop --user"));
        }
        (Role::Admin | Role::Support | Role::Customer | Role::Provider, _, Some(_)) => {
            return Err(AppError::bad_input("only merchant keys are bound to a merchant; drop --merchant"));
        }
        _ => {}
    }
    if role == Role::Provider {
        return Err(AppError::bad_input("the provider authenticates by signature, not by a key"));
    }
    let mut conn = pool.get().await?;
    if let Some(user_id) = user_id
        && queries::find_user(&mut conn, user_id).await?.is_none()
    {
        return Err(AppError::not_found(format!("user {user_id} not found")));
    }
    if let Some(merchant_id) = merchant_id
        && crate::db::merchants::find_merchant(&mut conn, merchant_id).await?.is_none()
    {
        return Err(AppError::not_found(format!("merchant {merchant_id} not found")));
    }
    let raw = generate_key();
    let default_name = format!("{}-key", role.as_str());
    let key = queries::insert_api_key(
        &mut conn,
        &models::NewApiKey {
            name: name.unwrap_or(&default_name),
            role: role.as_str(),
            user_id,
            merchant_id,
            key_prefix: &raw[..KEY_PREFIX.len() + 8],
            key_hash: &hash_key(&raw),
        },
    )
    .await?;
    Ok(CreatedKey { key, raw })
}

pub async fn revoke_key(pool: &DbPool, id: i64) -> AppResult<()> {
    let mut conn = pool.get().await?;
    if queries::revoke_api_key(&mut conn, id, Utc::now()).await? {
        Ok(())
    } else {
        Err(AppError::not_found(format!("no active api key with id {id}")))
    }
}

pub async fn list_keys(pool: &DbPool) -> AppResult<Vec<models::ApiKey>> {
    let mut conn = pool.get().await?;
    Ok(queries::list_api_keys(&mut conn).await?)
}
