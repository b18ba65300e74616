"""GraphQL object types, one module per feature, each mapping domain entities at the edge."""
