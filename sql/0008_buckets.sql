-- 0008: the bucket count a campaign was created with (`coupon create --buckets`),
-- so `coupon load` rebuilds it as it was.
ALTER TABLE coupon_campaigns ADD COLUMN buckets INT UNSIGNED NOT NULL DEFAULT 1;
