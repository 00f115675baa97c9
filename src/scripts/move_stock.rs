//! `lua/move_stock.lua`: the steps of moving stock between two buckets of a
//! sale (see `sales::moves`).

use crate::durability::Ack;
use fred::{prelude::*, types::scripts::Script};

use super::{int, text, unexpected};
use crate::keys::SaleKeys;

pub struct MoveStock(pub(super) Script, pub(super) Ack);

/// Units taken from a donor bucket for a home bucket, recorded in the donor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub id: String,
    pub home: u32,
    pub sku: u64,
    pub units: u64,
    /// The donor's clock (ms).
    pub taken_at: u64,
    /// The seeding it was taken in (see `seed_sale.lua`): a home seeded
    /// again since refuses it.
    pub epoch: String,
}

impl Move {
    /// A move as the donor's `moves` hash records it (`home:sku:units:taken_at:epoch`).
    pub fn parse(id: String, record: &str) -> Option<Move> {
        let mut parts = record.split(':');
        let mut num = || parts.next().and_then(|p| p.parse::<u64>().ok());
        let (home, sku, units, taken_at) = (num()?, num()?, num()?, num()?);
        let epoch = parts.next().filter(|e| e.parse::<u64>().is_ok())?.to_string();
        Some(Move { id, home: u32::try_from(home).ok()?, sku, units, taken_at, epoch })
    }
}

/// What the home bucket said to a move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Given {
    /// Added now.
    Given,
    /// Added before (by this move's id).
    Already,
    /// Taken longer than the window ago: refused, and it will be forever.
    Late,
    /// The home's sale is gone (retired or replaced).
    Gone,
}

impl MoveStock {
    /// Takes units of `sku` from `donor` for `home` (at least `wanted`, up to
    /// half the donor's stock, never more than it has); None when it has none.
    pub async fn take(
        &self,
        client: &Client,
        donor: &SaleKeys,
        donor_bucket: u32,
        home_bucket: u32,
        sku: u64,
        wanted: u64,
    ) -> Result<Option<Move>, Error> {
        let keys = vec![donor.meta.as_str(), donor.stock.as_str(), donor.initial.as_str(), donor.moves.as_str()];
        let args = vec![
            "take".to_string(),
            sku.to_string(),
            wanted.to_string(),
            home_bucket.to_string(),
            donor_bucket.to_string(),
        ];
        let answer: Vec<Value> = self.1.evalsha(&self.0, client, keys, args).await?;
        match (answer.first().and_then(int), text(answer.get(1)), answer.get(2).and_then(int), text(answer.get(3))) {
            (Some(0), ..) => Ok(None),
            (Some(units), Some(id), Some(taken_at), Some(epoch)) if units > 0 => Ok(Some(Move {
                id,
                home: home_bucket,
                sku,
                units: units as u64,
                taken_at: taken_at.max(0) as u64,
                epoch,
            })),
            _ => Err(unexpected("move_stock", &Value::Array(answer))),
        }
    }

    /// Gives the move's units to its home bucket, once.
    pub async fn give(&self, client: &Client, home: &SaleKeys, m: &Move, window_ms: u64) -> Result<Given, Error> {
        let keys = vec![home.meta.as_str(), home.stock.as_str(), home.initial.as_str(), home.received.as_str()];
        let args = vec![
            "give".to_string(),
            m.sku.to_string(),
            m.units.to_string(),
            m.id.clone(),
            m.taken_at.to_string(),
            window_ms.to_string(),
            m.epoch.clone(),
        ];
        let answer: Value = self.1.evalsha(&self.0, client, keys, args).await?;
        match answer.as_str().as_deref() {
            Some("given") => Ok(Given::Given),
            Some("already") => Ok(Given::Already),
            Some("late") => Ok(Given::Late),
            Some("gone") => Ok(Given::Gone),
            _ => Err(unexpected("move_stock", &answer)),
        }
    }

    /// Writes a recorded move again, through the replica acknowledgement:
    /// false when it is no longer recorded.
    pub async fn keep(&self, client: &Client, donor: &SaleKeys, move_id: &str) -> Result<bool, Error> {
        let answer: Value = self
            .1
            .evalsha(&self.0, client, vec![donor.moves.as_str()], vec!["keep".to_string(), move_id.into()])
            .await?;
        match answer.as_str().as_deref() {
            Some("kept") => Ok(true),
            Some("gone") => Ok(false),
            _ => Err(unexpected("move_stock", &answer)),
        }
    }

    /// Forgets a move its home was given.
    pub async fn done(&self, client: &Client, donor: &SaleKeys, move_id: &str) -> Result<(), Error> {
        let _: Value = self
            .1
            .evalsha(&self.0, client, vec![donor.moves.as_str()], vec!["done".to_string(), move_id.into()])
            .await?;
        Ok(())
    }

    /// Puts a move nobody was given back into its donor; false when it was
    /// no longer recorded.
    pub async fn undo(&self, client: &Client, donor: &SaleKeys, move_id: &str) -> Result<bool, Error> {
        let keys = vec![donor.stock.as_str(), donor.initial.as_str(), donor.moves.as_str()];
        let answer: Value = self.1.evalsha(&self.0, client, keys, vec!["undo".to_string(), move_id.into()]).await?;
        match answer.as_str().as_deref() {
            Some("undone") => Ok(true),
            Some("gone") => Ok(false),
            _ => Err(unexpected("move_stock", &answer)),
        }
    }
}
