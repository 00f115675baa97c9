//! Connecting to Kafka and making sure the event topic exists. rskafka has no
//! consumer groups or partitioner: partitions are chosen by `events::partition_for`
//! and consumer progress lives in MySQL (see `sink`).

use std::{sync::Arc, time::Duration};

use rskafka::{
    client::{
        error::{Error, ProtocolError},
        partition::{PartitionClient, UnknownTopicHandling},
        Client, ClientBuilder,
    },
    BackoffConfig,
};

use crate::config::KafkaSettings;

/// Replication factor used when this service creates the topic.
const REPLICATION: i16 = 1;

pub async fn connect(settings: &KafkaSettings) -> anyhow::Result<Arc<Client>> {
    let client = ClientBuilder::new(settings.kafka_brokers.clone())
        .client_id("flashsale")
        .backoff_config(backoff(settings.timeout()))
        .build()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach Kafka at {}: {e}", settings.kafka_brokers.join(",")))?;
    Ok(Arc::new(client))
}

/// Retries with exponential backoff, but gives up after `deadline`
/// (rskafka's default never does).
pub fn backoff(deadline: Duration) -> BackoffConfig {
    BackoffConfig {
        init_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_secs(1),
        base: 2.0,
        deadline: Some(deadline),
    }
}

/// Partition count of `topic`, creating it with `settings.kafka_partitions` when missing.
pub async fn ensure_topic(client: &Client, topic: &str, settings: &KafkaSettings) -> anyhow::Result<i32> {
    let deadline = tokio::time::Instant::now() + settings.timeout();
    let mut created = false;
    loop {
        let topics = client.list_topics().await?;
        if let Some(t) = topics.iter().find(|t| t.name == topic) {
            if !t.partitions.is_empty() {
                return Ok(t.partitions.len() as i32);
            }
        }
        if !created {
            let timeout_ms = settings.kafka_timeout_ms.min(i32::MAX as u64) as i32;
            match client
                .controller_client()?
                .create_topic(topic, settings.kafka_partitions, REPLICATION, timeout_ms)
                .await
            {
                Ok(()) => tracing::info!(topic, partitions = settings.kafka_partitions, "created topic"),
                Err(Error::ServerError { protocol_error: ProtocolError::TopicAlreadyExists, .. }) => {}
                Err(e) => return Err(e.into()),
            }
            created = true;
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("topic {topic} did not appear within {:?}", settings.timeout());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One client per partition of `topic`, indexed by partition.
pub async fn partition_clients(
    client: &Client,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<Vec<Arc<PartitionClient>>> {
    let mut out = Vec::with_capacity(partitions as usize);
    for p in 0..partitions {
        out.push(Arc::new(client.partition_client(topic, p, UnknownTopicHandling::Retry).await?));
    }
    Ok(out)
}

/// The partitions of the event topics.
pub struct Topics {
    pub coupons: Vec<Arc<PartitionClient>>,
    pub orders: Vec<Arc<PartitionClient>>,
    pub wallets: Vec<Arc<PartitionClient>>,
}

impl Topics {
    /// Makes sure every topic exists and opens a client per partition.
    pub async fn open(client: &Client, settings: &KafkaSettings) -> anyhow::Result<Topics> {
        let open = |topic: String| async move {
            let n = ensure_topic(client, &topic, settings).await?;
            partition_clients(client, &topic, n).await
        };
        let coupons = open(settings.coupon_topic.clone()).await?;
        let orders = open(settings.order_topic.clone()).await?;
        let wallets = open(settings.wallet_topic.clone()).await?;
        Ok(Topics { coupons, orders, wallets })
    }

    /// The partitions an event goes to.
    pub fn for_event(&self, event: &crate::events::Event) -> &[Arc<PartitionClient>] {
        match event {
            crate::events::Event::CouponIssued(_) => &self.coupons,
            crate::events::Event::Order(_) => &self.orders,
            crate::events::Event::Wallet(_) => &self.wallets,
        }
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<PartitionClient>> {
        self.coupons.iter().chain(self.orders.iter()).chain(self.wallets.iter())
    }
}
