-- Task `upsert_customers` of customers_hourly, run on Trino (connection olo_trino_sales).
-- Applies the latest change of every customer from the CDC table in bronze to silver.
MERGE INTO lake."sales.silver".customers AS t
USING (
    SELECT customer_id, email, country, created_at, changed_at, op
    FROM (
        SELECT
            customer_id,
            lower(trim(email)) AS email,
            upper(country) AS country,
            created_at,
            changed_at,
            op,
            row_number() OVER (PARTITION BY customer_id ORDER BY changed_at DESC) AS rn
        FROM lake."sales.bronze".customers
        WHERE changed_at > current_timestamp - INTERVAL '1' DAY
    )
    WHERE rn = 1
) AS s
ON t.customer_id = s.customer_id
WHEN MATCHED AND s.op = 'delete' THEN DELETE
WHEN MATCHED AND s.changed_at > t.changed_at THEN
    UPDATE SET email = s.email, country = s.country, changed_at = s.changed_at
WHEN NOT MATCHED AND s.op <> 'delete' THEN
    INSERT (customer_id, email, country, created_at, changed_at)
    VALUES (s.customer_id, s.email, s.country, s.created_at, s.changed_at)
