//! `lua/forget_orders.lua`: released orders leave Redis once MySQL has them
//! (see `sales::forget`).

use fred::{prelude::*, types::scripts::Script};

use super::{int, unexpected};
use crate::keys::SaleKeys;

pub struct ForgetOrders(pub(super) Script);

impl ForgetOrders {
    /// Deletes those of `ids` Redis has released; all leave `released`.
    /// How many were deleted.
    pub async fn call(&self, client: &Client, keys: &SaleKeys, ids: &[u64]) -> Result<u64, Error> {
        let args: Vec<String> = ids.iter().map(u64::to_string).collect();
        let keys = vec![keys.orders.as_str(), keys.released.as_str(), keys.meta.as_str()];
        let answer: Value = self.0.evalsha_with_reload(client, keys, args).await?;
        int(&answer).map(|n| n.max(0) as u64).ok_or_else(|| unexpected("forget_orders", &answer))
    }
}
