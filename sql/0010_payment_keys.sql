-- 0010: every gateway payment reference, bound to the one thing it paid.
-- A confirm or charge claims its payment_key here before it takes effect;
-- the key names one order (`order:SALE:ORDER`) or one charge
-- (`charge:USER:IDEMPOTENCY-KEY`) for good, so one payment pays once.
-- VARBINARY: keys compare byte for byte (no case folding, no pad space).
CREATE TABLE IF NOT EXISTS payment_keys (
  payment_key  VARBINARY(128) NOT NULL PRIMARY KEY,
  paid_for     VARBINARY(200) NOT NULL,
  created_at   DATETIME(3)    NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE = InnoDB;
