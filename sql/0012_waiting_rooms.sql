-- 0012: the settings of each waiting room (`sale|coupon create --queue`), so
-- `stock load` / `coupon load` give a sale or campaign Redis lost its room back.
-- room: `sale:ID` or `coupon:ID`. The line itself lives in Redis only.
CREATE TABLE IF NOT EXISTS waiting_rooms (
  room              VARCHAR(40)      NOT NULL PRIMARY KEY,
  admit_per_second  INT UNSIGNED     NOT NULL,
  admission_ttl_ms  BIGINT UNSIGNED  NOT NULL,
  opens_before_ms   BIGINT UNSIGNED  NOT NULL,
  poll_grace_ms     BIGINT UNSIGNED  NOT NULL,
  pow_difficulty    INT UNSIGNED     NOT NULL DEFAULT 0,
  return_url        VARCHAR(2000)    NULL
) ENGINE = InnoDB;
