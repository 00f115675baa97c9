-- 0005: partitions whose sink is stalled, as the sink reports them for
-- `flashsale status`: `past_end` (the stored offset lies beyond the
-- broker's end) or `failing` (its batch failed FLASHSALE_SINK_STALL_AFTER
-- times in a row). The sink deletes the row when the stall ends or a sink
-- starts on the partition; `flashsale sink reset-offset` deletes it too.
CREATE TABLE IF NOT EXISTS sink_stalls (
  topic         VARCHAR(249)   NOT NULL,
  partition_id  INT            NOT NULL,
  reason        VARCHAR(16)    NOT NULL,
  detail        VARCHAR(1024)  NOT NULL,
  since         DATETIME(3)    NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at    DATETIME(3)    NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (topic, partition_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
