"""The sales team's revenue forecast: the example package the `train` task of orders_daily runs."""
