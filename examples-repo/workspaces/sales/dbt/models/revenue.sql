-- gold.revenue: daily revenue per currency from completed orders.
{{ config(materialized='table') }}

select
    cast(ordered_at as date)          as order_date,
    currency,
    count(*)                          as orders,
    count(distinct customer_id)       as customers,
    sum(amount)                       as revenue
from {{ source('silver', 'orders') }}
where status in ('paid', 'shipped', 'delivered')
group by 1, 2
