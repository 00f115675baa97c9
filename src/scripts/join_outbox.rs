//! `lua/join_outbox.lua`: the relay's consumer group on a live outbox stream,
//! never on one whose campaign or sale is gone.

use fred::{prelude::*, types::scripts::Script};

use super::{int, unexpected};
use crate::keys::OUTBOX_GROUP;

pub struct JoinOutbox(pub(super) Script);

impl JoinOutbox {
    /// True when `outbox` has the relay's group now; false when its owner's
    /// `meta` is gone (retired and deleted): nothing was created.
    pub async fn call(&self, client: &Client, meta: &str, outbox: &str) -> Result<bool, Error> {
        let answer: Value = self.0.evalsha_with_reload(client, vec![meta, outbox], vec![OUTBOX_GROUP]).await?;
        match int(&answer) {
            Some(1) => Ok(true),
            Some(0) => Ok(false),
            _ => Err(unexpected("join_outbox", &answer)),
        }
    }
}
