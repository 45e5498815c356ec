"""Field types shared by request bodies."""

import json
from typing import Annotated, Any

import orjson
import pydantic_core
from fastapi import Path, Response
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


def _defaults_in_words(schema: dict[str, Any]) -> None:
    """A field's default goes into its description instead of ``default``: TypeScript
    generators (openapi-typescript) make a field with a ``default`` required, so a body that
    leaves it out would not type-check. Such a field is optional either way."""
    for field in schema.get("properties", {}).values():
        if "default" in field:
            said = f"Defaults to `{json.dumps(field.pop('default'))}`."
            field["description"] = " ".join(filter(None, (field.get("description"), said)))


class Body(BaseModel):
    """A request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_defaults_in_words)


# Integer primary keys are 32-bit on PostgreSQL: a larger id is a 422, not a database error.
MAX_ID = 2**31 - 1


def _digits(value: object) -> object:
    """An id in a path is written in decimal digits only: ``1.0``, `` 1`` or ``+1`` are not
    ids (pydantic alone would read them as 1)."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("must be a whole number written in digits")
    return value


Id = Annotated[int, Path(ge=1, le=MAX_ID), BeforeValidator(_digits)]


_JSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def respond(
    content: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """``content`` (rows as dicts, lists, models) as the JSON response, serialized once.

    A route that answers this way names its ``response_model`` for OpenAPI, and its query
    selects exactly that model's fields: FastAPI would otherwise validate the same data
    again on the way out.

    orjson writes the same bytes as pydantic's ``to_json`` (UTC datetimes end in ``Z``), 3-5
    times faster: 13 kB, a page of 24 keys, in 10 µs instead of 35-55. What it does not know
    (a pydantic model) goes through pydantic.
    """
    return Response(
        orjson.dumps(content, default=pydantic_core.to_jsonable_python, option=_JSON_OPTIONS),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )
