-- 0007: wallets and their history, as the sink writes them from wallet
-- events; indexes for a user's own coupons and orders ("mine" views).
-- Amounts are in minor units.

-- One row per wallet: the balance after its highest version seen. The sink
-- only moves a row to a higher version, so a late duplicate changes nothing.
CREATE TABLE IF NOT EXISTS wallets (
  user_id     BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  balance     BIGINT UNSIGNED NOT NULL,
  version     BIGINT UNSIGNED NOT NULL,
  updated_at  DATETIME(3)     NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- One row per wallet event (unique by event id, so a replay is a no-op):
-- kind 'charge' adds amount, 'payment' takes it (for order_id of sale_id).
-- version is the wallet's version after the change: newest first is version DESC.
CREATE TABLE IF NOT EXISTS wallet_transactions (
  event_id       VARCHAR(64)     NOT NULL PRIMARY KEY,
  user_id        BIGINT UNSIGNED NOT NULL,
  kind           VARCHAR(16)     NOT NULL,
  amount         BIGINT UNSIGNED NOT NULL,
  balance_after  BIGINT UNSIGNED NOT NULL,
  version        BIGINT UNSIGNED NOT NULL,
  sale_id        BIGINT UNSIGNED NULL,
  order_id       BIGINT UNSIGNED NULL,
  created_at     DATETIME(3)     NOT NULL,
  KEY wallet_transactions_by_user (user_id, version)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

ALTER TABLE orders ADD KEY orders_by_user_newest (user_id, order_id, sale_id);

ALTER TABLE coupon_issues ADD KEY coupon_issues_by_user (user_id);
