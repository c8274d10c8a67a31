-- Task `build_report` of campaign_report, run on Trino (connection olo_trino_marketing).
-- Reads marketing's own spend and the sales workspace's gold revenue (granted to
-- group:marketing-eng as viewer of sales), and rebuilds curated.campaign_report with the columns
-- marketing's workspace.yaml declares for it. sales.gold.revenue is one row per day and currency.
CREATE OR REPLACE TABLE lake."marketing.curated".campaign_report AS
SELECT
    s.spend_date                                 AS report_date,
    s.campaign_id,
    s.channel,
    s.currency,
    CAST(sum(s.spend) AS decimal(14, 2))         AS spend,
    max(r.revenue)                               AS revenue,
    CAST(max(r.revenue) AS double)
        / nullif(CAST(sum(s.spend) AS double), 0) AS roas
FROM lake."marketing.raw".campaign_spend AS s
LEFT JOIN lake."sales.gold".revenue AS r
    ON r.order_date = s.spend_date
   AND r.currency = s.currency
GROUP BY s.spend_date, s.campaign_id, s.channel, s.currency
