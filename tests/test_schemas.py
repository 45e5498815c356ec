"""Response bodies: ``respond`` writes exactly the JSON pydantic would."""

import datetime as dt

import pydantic_core
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from craftdesk.schemas import respond

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.dates()
    | st.datetimes(timezones=st.just(dt.UTC))
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@given(VALUES)
def test_respond_writes_the_bytes_pydantic_writes(value: object) -> None:
    assert respond(value).body == pydantic_core.to_json(value)


class Creator(BaseModel):
    id: int
    email: str
    since: dt.datetime


def test_respond_writes_a_model_as_pydantic_does() -> None:
    creator = Creator(id=1, email="é@example.com", since=dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    response = respond({"data": [creator], "at": dt.datetime(2026, 12, 8, 1, 2, 3, 450, dt.UTC)})
    assert response.body == (
        b'{"data":[{"id":1,"email":"\xc3\xa9@example.com","since":"2026-01-02T00:00:00Z"}],'
        b'"at":"2026-12-08T01:02:03.000450Z"}'
    )
    assert response.media_type == "application/json"
