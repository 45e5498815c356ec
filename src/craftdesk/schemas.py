"""Field types shared by request bodies."""

from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, BeforeValidator, ConfigDict, StringConstraints

# PostgreSQL stores no NUL character in text: refuse it up front (422) on every backend,
# rather than let the database fail the insert.
NO_NUL = r"^[^\x00]*$"

Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=NO_NUL)
]
Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=NO_NUL)
]
Text = Annotated[str, StringConstraints(max_length=10_000, pattern=NO_NUL)]


class Body(BaseModel):
    """A request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


# Integer primary keys are 32-bit on PostgreSQL: a larger id is a 422, not a database error.
MAX_ID = 2**31 - 1


def _digits(value: object) -> object:
    """An id in a path is written in decimal digits only: ``1.0``, `` 1`` or ``+1`` are not
    ids (pydantic alone would read them as 1)."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("must be a whole number written in digits")
    return value


Id = Annotated[int, Path(ge=1, le=MAX_ID), BeforeValidator(_digits)]
