from typing import Annotated, Any

from fastapi import Response

from runwire.auth import service
from runwire.auth.schemas import SessionEnvelope, SessionInfo, SignIn, SignUp, UserEnvelope, UserRead
from runwire.config import Settings
from runwire.deps import (
    SESSION_COOKIE,
    Attempt,
    CurrentAuth,
    DatabaseDep,
    PasswordsDep,
    ReadQuota,
    SessionDep,
    SettingsDep,
    WriteQuota,
    counted_body,
)
from runwire.openapi import also_answers
from runwire.ratelimits.service import Charge, Rules
from runwire.routing import api_router
from runwire.schemas import Envelope

router = api_router("/api/auth", "auth")


def _json_body(model: type[SignIn | SignUp]) -> dict[str, Any]:
    """The request body for the schema: these routes read their body themselves (see `counted_body`)."""
    schema = model.model_json_schema(by_alias=True)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _signed_in(signed_in: service.SignedIn, response: Response, settings: Settings) -> Envelope[UserEnvelope]:
    """The user, with the new session's cookie set on the response."""
    response.set_cookie(
        SESSION_COOKIE,
        signed_in.token,
        max_age=int(settings.session_ttl_hours * 3600),
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )
    return Envelope(data=UserEnvelope(user=UserRead.model_validate(signed_in.user)))


def _sign_up_charges(rules: Rules, address: str, _data: SignUp | None, at: float) -> list[Charge]:
    return [Charge(rules.sign_up_address, address, at)]


def _sign_in_charges(rules: Rules, address: str, data: SignIn | None, at: float) -> list[Charge]:
    charges = [Charge(rules.sign_in_address, address, at)]
    if data is not None:
        charges.append(Charge(rules.sign_in_email, data.email, at))
    return charges


@router.post(
    "/sign-up/email",
    status_code=201,
    response_model=Envelope[UserEnvelope],
    openapi_extra=_json_body(SignUp),
    responses=also_answers(409, "An account with this email already exists."),
)
def sign_up(
    attempt: Annotated[Attempt[SignUp], counted_body(SignUp, _sign_up_charges)],
    response: Response,
    database: DatabaseDep,
    passwords: PasswordsDep,
    settings: SettingsDep,
) -> Envelope[UserEnvelope]:
    signed_in = service.sign_up(
        attempt.data, passwords=passwords, ttl_hours=settings.session_ttl_hours, database=database
    )
    return _signed_in(signed_in, response, settings)


@router.post(
    "/sign-in/email",
    response_model=Envelope[UserEnvelope],
    openapi_extra=_json_body(SignIn),
    responses=also_answers(401, "The email or password is wrong."),
)
def sign_in(
    attempt: Annotated[Attempt[SignIn], counted_body(SignIn, _sign_in_charges)],
    response: Response,
    database: DatabaseDep,
    passwords: PasswordsDep,
    settings: SettingsDep,
) -> Envelope[UserEnvelope]:
    signed_in = service.sign_in(
        attempt.data,
        passwords=passwords,
        charges=attempt.charges,
        ttl_hours=settings.session_ttl_hours,
        database=database,
    )
    return _signed_in(signed_in, response, settings)


@router.get("/session", response_model=Envelope[SessionEnvelope])
def get_session(auth: CurrentAuth, session: SessionDep, _quota: ReadQuota) -> Envelope[SessionEnvelope]:
    user = service.get_user(auth.user_id, session=session)
    return Envelope(
        data=SessionEnvelope(user=UserRead.model_validate(user), session=SessionInfo(expires_at=auth.expires_at))
    )


@router.post("/sign-out", status_code=204)
def sign_out(auth: CurrentAuth, session: SessionDep, settings: SettingsDep, _quota: WriteQuota) -> Response:
    service.revoke_session(auth.session_id, session=session)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=settings.secure_cookies)
    return response
