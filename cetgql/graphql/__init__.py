"""The GraphQL layer: types, operations, permissions, dataloaders. Rules live in services/."""
