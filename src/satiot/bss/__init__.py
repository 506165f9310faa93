"""Business support: customers, contracts, catalog, orders, activation, rating and billing."""
