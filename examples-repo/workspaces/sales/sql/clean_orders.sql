-- Task `clean` of orders_daily, run on Trino (connection olo_trino_sales).
-- Keeps the latest version of every order from bronze, drops test orders and merges the result
-- into silver. Iceberg namespaces are two-level, so the Trino schema is "sales.<namespace>".
MERGE INTO lake."sales.silver".orders AS t
USING (
    SELECT order_id, customer_id, status, currency, amount, ordered_at, updated_at
    FROM (
        SELECT
            order_id,
            customer_id,
            status,
            currency,
            amount,
            ordered_at,
            updated_at,
            row_number() OVER (PARTITION BY order_id ORDER BY updated_at DESC) AS rn
        FROM lake."sales.bronze".orders
        WHERE status <> 'test'
          AND amount IS NOT NULL
    )
    WHERE rn = 1
) AS s
ON t.order_id = s.order_id
WHEN MATCHED AND s.updated_at > t.updated_at THEN
    UPDATE SET
        customer_id = s.customer_id,
        status = s.status,
        currency = s.currency,
        amount = s.amount,
        ordered_at = s.ordered_at,
        updated_at = s.updated_at
WHEN NOT MATCHED THEN
    INSERT (order_id, customer_id, status, currency, amount, ordered_at, updated_at)
    VALUES (s.order_id, s.customer_id, s.status, s.currency, s.amount, s.ordered_at, s.updated_at)
