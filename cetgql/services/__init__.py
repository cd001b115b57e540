"""Business rules as plain async functions: no GraphQL, no HTTP."""
