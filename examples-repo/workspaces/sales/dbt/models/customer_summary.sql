-- gold.customer_summary: lifetime orders and revenue per customer (the columns workspace.yaml
-- declares for gold.customer_summary).
{{ config(materialized='table') }}

select
    c.customer_id,
    c.country,
    c.created_at,
    count(o.order_id)                 as orders,
    cast(coalesce(sum(o.amount), 0) as decimal(14, 2)) as lifetime_revenue,
    max(o.ordered_at)                 as last_ordered_at
from {{ source('silver', 'customers') }} as c
left join {{ source('silver', 'orders') }} as o
    on o.customer_id = c.customer_id
   and o.status in ('paid', 'shipped', 'delivered')
group by 1, 2, 3
