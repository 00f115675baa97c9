-- Order events the sink refused to merge: an event whose (sale_id, order_id)
-- names a row made by another order (another user or creation time), e.g.
-- after a sale's Redis keys were replaced or rolled back. The row in `orders`
-- stays as it was; the refused event is kept here whole for an operator, and
-- `flashsale reconcile` reports it.
CREATE TABLE IF NOT EXISTS order_conflicts (
  event_id     VARCHAR(64)     NOT NULL,
  sale_id      BIGINT UNSIGNED NOT NULL,
  order_id     BIGINT UNSIGNED NOT NULL,
  user_id      BIGINT UNSIGNED NOT NULL,
  created_at   DATETIME(3)     NOT NULL,
  order_json   TEXT            NOT NULL,
  detected_at  DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (event_id),
  KEY order_conflicts_by_sale (sale_id, order_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
