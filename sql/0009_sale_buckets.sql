-- 0009: the bucket count a single-SKU sale was created with (`sale create --buckets`),
-- so `stock load` rebuilds each bucket's part.
ALTER TABLE sales ADD COLUMN buckets INT UNSIGNED NOT NULL DEFAULT 1;
