-- 0002: sales, their SKUs, orders and order lines; coupons get a discount and
-- remember the order that used them. Amounts are in minor units (cents).

ALTER TABLE coupon_campaigns
  ADD COLUMN discount BIGINT UNSIGNED NOT NULL DEFAULT 0;

-- used_* is written by order events; used_version (the coupon's use sequence at that event) keeps a late, older event
-- from undoing a newer one. A row may arrive from an order event before its
-- own issue event (different partitions): event_id is '' until that one lands.
ALTER TABLE coupon_issues
  MODIFY COLUMN event_id  VARCHAR(64) NOT NULL DEFAULT '',
  MODIFY COLUMN issued_at DATETIME(3) NOT NULL DEFAULT '1970-01-01 00:00:01.000',
  ADD COLUMN used_sale_id  BIGINT UNSIGNED NULL,
  ADD COLUMN used_order_id BIGINT UNSIGNED NULL,
  ADD COLUMN used_version  BIGINT UNSIGNED NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS sales (
  sale_id         BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  starts_at       DATETIME(3)     NOT NULL,
  ends_at         DATETIME(3)     NULL,
  per_user_limit  INT UNSIGNED    NOT NULL,
  hold_ms         BIGINT UNSIGNED NOT NULL,
  created_at      DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE = InnoDB;

-- stock is what was supplied in all (seed plus top-ups).
CREATE TABLE IF NOT EXISTS sale_skus (
  sale_id  BIGINT UNSIGNED NOT NULL,
  sku      BIGINT UNSIGNED NOT NULL,
  price    BIGINT UNSIGNED NOT NULL,
  stock    BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (sale_id, sku)
) ENGINE = InnoDB;

-- One row per order; version grows with each state change, and the sink
-- only moves a row to a higher version.
CREATE TABLE IF NOT EXISTS orders (
  sale_id      BIGINT UNSIGNED NOT NULL,
  order_id     BIGINT UNSIGNED NOT NULL,
  user_id      BIGINT UNSIGNED NOT NULL,
  status       VARCHAR(16)     NOT NULL,
  total        BIGINT UNSIGNED NOT NULL,
  discount     BIGINT UNSIGNED NOT NULL,
  to_pay       BIGINT UNSIGNED NOT NULL,
  coupon_id    BIGINT UNSIGNED NULL,
  payment_key  VARCHAR(128)    NULL,
  version      INT UNSIGNED    NOT NULL,
  event_id     VARCHAR(64)     NOT NULL,
  created_at   DATETIME(3)     NOT NULL,
  expires_at   DATETIME(3)     NOT NULL,
  updated_at   DATETIME(3)     NOT NULL,
  PRIMARY KEY (sale_id, order_id),
  KEY orders_by_user (sale_id, user_id)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS order_items (
  sale_id   BIGINT UNSIGNED NOT NULL,
  order_id  BIGINT UNSIGNED NOT NULL,
  sku       BIGINT UNSIGNED NOT NULL,
  quantity  INT UNSIGNED    NOT NULL,
  price     BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (sale_id, order_id, sku)
) ENGINE = InnoDB;
