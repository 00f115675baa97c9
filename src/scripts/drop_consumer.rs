//! `lua/drop_consumer.lua`: forget a gone relay's consumer once it holds nothing.

use fred::{prelude::*, types::scripts::Script};

use crate::keys::OUTBOX_GROUP;

pub struct DropConsumer(pub(super) Script);

impl DropConsumer {
    /// True when `consumer` was removed from `outbox`'s group; false while it
    /// still holds pending entries.
    pub async fn call(&self, client: &Client, outbox: &str, consumer: &str) -> Result<bool, Error> {
        let removed: i64 = self
            .0
            .evalsha_with_reload(client, vec![outbox], vec![OUTBOX_GROUP.to_string(), consumer.to_string()])
            .await?;
        Ok(removed == 1)
    }
}
