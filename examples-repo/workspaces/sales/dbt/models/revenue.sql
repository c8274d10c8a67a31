-- gold.revenue: daily revenue per currency from completed orders. The columns and their types
-- are the ones workspace.yaml declares for gold.revenue (the casts keep Trino's sum() from
-- widening the decimal to decimal(38, 2)), and so is the partitioning.
{{ config(materialized='table', properties={"partitioning": "ARRAY['month(order_date)']"}) }}

select
    cast(ordered_at as date)                  as order_date,
    currency,
    count(*)                                  as orders,
    count(distinct customer_id)               as customers,
    cast(sum(amount) as decimal(14, 2))       as revenue
from {{ source('silver', 'orders') }}
where status in ('paid', 'shipped', 'delivered')
group by 1, 2
