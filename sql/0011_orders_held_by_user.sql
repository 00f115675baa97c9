-- 0011: a user's orders by status, so the "mine" view's completeness check
-- reads only the orders that hold stock (reserved, paid), not every order
-- the user ever made.
ALTER TABLE orders ADD KEY orders_by_user_status (user_id, status, sale_id);
