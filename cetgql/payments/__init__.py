"""The payment plugin contract: hookspecs, value types and the plugin manager.

Provider plugins (``plugins/<name>/``) import this package and nothing else of cetgql.
"""
