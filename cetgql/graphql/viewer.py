"""Root fields every client starts from: ``viewer`` and ``node``."""

from __future__ import annotations

import strawberry
from strawberry import relay
from strawberry.types import Info

from cetgql.graphql.types.accounts import Account


@strawberry.type
class ViewerQueries:
    node: relay.Node | None = relay.node(
        description="Any object by its global id; null when it does not exist or is not yours."
    )

    @strawberry.field(description="The signed-in account; null when not signed in.")
    async def viewer(self, info: Info) -> Account | None:
        account = await info.context.viewer()
        return Account.from_model(account) if account else None
