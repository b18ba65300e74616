"""The GraphQL edge: types, the assembled schema, settings, the composition root and the CLI."""
