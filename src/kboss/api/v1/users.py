"""Users of the caller's org: an admin signs one out everywhere, or removes one."""

from __future__ import annotations

from fastapi import APIRouter

from kboss.accounts import users
from kboss.api.deps import CtxDep, State

router = APIRouter(prefix="/api/v1/users", tags=["users"])


@router.post("/{user_id}/signout", status_code=204)
async def sign_out(user_id: str, ctx: CtxDep, state: State) -> None:
    """Revokes every token of the user (an admin of the same org), on every process within a second."""
    signed_out = await users.sign_out_member(ctx, user_id)
    state.tokens.forget_user(signed_out)


@router.delete("/{user_id}", status_code=204)
async def remove_user(user_id: str, ctx: CtxDep, state: State) -> None:
    """Deletes a user of the caller's org (not the caller); their tokens are refused on every process at once."""
    removed = await users.remove_member(ctx, user_id)
    state.tokens.forget_user(removed.id)
