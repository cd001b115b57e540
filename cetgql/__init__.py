"""cetgql: the GraphQL back end of a national exam registration system."""

__version__ = "0.1.0"
