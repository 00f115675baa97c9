-- 0001: coupon campaigns, issued coupons, and the sink's Kafka offsets.
-- Times are UTC, millisecond precision.

CREATE TABLE IF NOT EXISTS coupon_campaigns (
  coupon_id   BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  total       BIGINT UNSIGNED NOT NULL,
  starts_at   DATETIME(3)     NOT NULL,
  ends_at     DATETIME(3)     NULL,
  created_at  DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE = InnoDB;

-- One row per coupon a user received. The primary key makes a replayed
-- Kafka event a no-op: the sink inserts with ON DUPLICATE KEY UPDATE.
CREATE TABLE IF NOT EXISTS coupon_issues (
  coupon_id   BIGINT UNSIGNED NOT NULL,
  user_id     BIGINT UNSIGNED NOT NULL,
  event_id    VARCHAR(64)     NOT NULL,
  issued_at   DATETIME(3)     NOT NULL,
  PRIMARY KEY (coupon_id, user_id)
) ENGINE = InnoDB;

-- Next Kafka offset to read per (topic, partition), written in the same
-- transaction as the rows it covers.
CREATE TABLE IF NOT EXISTS sink_offsets (
  topic         VARCHAR(249) NOT NULL,
  partition_id  INT          NOT NULL,
  next_offset   BIGINT       NOT NULL,
  updated_at    DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (topic, partition_id)
) ENGINE = InnoDB;
