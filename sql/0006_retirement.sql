-- 0006: retirement. A campaign or sale retires once it has ended and every
-- one of its events is in MySQL: it leaves the relay's and the expiry task's
-- loops, and FLASHSALE_RETAIN_AFTER_END after its end its Redis keys are
-- deleted. From then on MySQL alone holds it, and the API answers GETs of
-- it (and of its orders) from these tables. retired_at is when it retired;
-- NULL while it is live (a `--replace` makes it live again).
ALTER TABLE coupon_campaigns ADD COLUMN retired_at DATETIME(3) NULL;
ALTER TABLE sales ADD COLUMN retired_at DATETIME(3) NULL;
