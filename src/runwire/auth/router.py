from fastapi import Response

from runwire.auth import service
from runwire.auth.models import User
from runwire.auth.schemas import SessionEnvelope, SessionInfo, SignIn, SignUp, UserEnvelope, UserRead
from runwire.config import Settings
from runwire.deps import SESSION_COOKIE, CurrentAuth, SessionDep, SettingsDep
from runwire.openapi import also_answers
from runwire.routing import api_router
from runwire.schemas import Envelope

router = api_router("/api/auth", "auth")


def _set_session_cookie(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(settings.session_ttl_hours * 3600),
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )


def _start_session(user: User, response: Response, settings: Settings, session: SessionDep) -> None:
    token, _ = service.start_session(user, ttl_hours=settings.session_ttl_hours, session=session)
    _set_session_cookie(response, token, settings)


@router.post(
    "/sign-up/email",
    status_code=201,
    response_model=Envelope[UserEnvelope],
    responses=also_answers(409, "An account with this email already exists."),
)
def sign_up(data: SignUp, response: Response, session: SessionDep, settings: SettingsDep) -> Envelope[UserEnvelope]:
    user = service.sign_up(data, session=session)
    _start_session(user, response, settings, session)
    return Envelope(data=UserEnvelope(user=UserRead.model_validate(user)))


@router.post(
    "/sign-in/email",
    response_model=Envelope[UserEnvelope],
    responses=also_answers(401, "The email or password is wrong."),
)
def sign_in(data: SignIn, response: Response, session: SessionDep, settings: SettingsDep) -> Envelope[UserEnvelope]:
    user = service.sign_in(data, session=session)
    _start_session(user, response, settings, session)
    return Envelope(data=UserEnvelope(user=UserRead.model_validate(user)))


@router.get("/session", response_model=Envelope[SessionEnvelope])
def get_session(auth: CurrentAuth, session: SessionDep) -> Envelope[SessionEnvelope]:
    user = service.get_user(auth.user_id, session=session)
    return Envelope(
        data=SessionEnvelope(user=UserRead.model_validate(user), session=SessionInfo(expires_at=auth.expires_at))
    )


@router.post("/sign-out", status_code=204)
def sign_out(auth: CurrentAuth, session: SessionDep, settings: SettingsDep) -> Response:
    service.revoke_session(auth.session_id, session=session)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=settings.secure_cookies)
    return response
