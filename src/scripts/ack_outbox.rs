//! `lua/ack_outbox.lua`: acknowledge and delete relayed outbox entries at once.

use fred::{prelude::*, types::scripts::Script};

use crate::keys::OUTBOX_GROUP;

pub struct AckOutbox(pub(super) Script);

impl AckOutbox {
    /// Returns how many entries were deleted.
    pub async fn call(&self, client: &Client, outbox: &str, ids: &[String]) -> Result<u64, Error> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut args = Vec::with_capacity(ids.len() + 1);
        args.push(OUTBOX_GROUP.to_string());
        args.extend(ids.iter().cloned());
        self.0.evalsha_with_reload(client, vec![outbox], args).await
    }
}
