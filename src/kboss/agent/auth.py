"""HTTP Basic auth of the site agent, with the site's own credentials, compared in constant time."""

from __future__ import annotations

import base64
import binascii
import hmac

from fastapi import Request

from kboss.errors import Unauthenticated


def check_basic_auth(request: Request, user: str, password: str) -> None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise Unauthenticated("需要 HTTP Basic 认证 (站点账号和密码)")
    try:
        given_user, _, given_password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("Authorization 头格式错误") from None
    # Compare both parts whatever the first gives, so that timing reveals neither.
    user_ok = hmac.compare_digest(given_user.encode(), user.encode())
    password_ok = hmac.compare_digest(given_password.encode(), password.encode())
    if not (user_ok and password_ok):
        raise Unauthenticated("站点账号或密码错误")
