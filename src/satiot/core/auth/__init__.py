"""Users, roles, tenants, credentials, and the single point where tenancy is enforced."""
