"""Monthly statements of customer accounts (JSON or a CSV download) and a provider's revenue (docs/billing.md)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from kboss.api.deps import CtxDep
from kboss.billing import statements
from kboss.errors import InvalidParameter

router = APIRouter(prefix="/api/v1", tags=["billing"])
FORMATS = ("json", "csv")
COLUMNS = (
    "row", "customer_id", "customer", "instance_id", "instance", "center", "cluster", "from", "to", "type", "model",
    "quantity", "unit", "unit_price", "charge_unit", "amount", "note",
)  # fmt: skip
TOTALS = ("charges", "refunds", "credits", "net", "opening", "closing")
# Excel takes a file without it for the local code page and garbles Chinese names.
BOM = "\ufeff"


# Documented, so that a client (and the schema's fuzzing) expects the download's type as well as JSON's.
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"description": "The statement(s); `format=csv`: a CSV download", "content": {"text/csv": {}}}
}


@router.get("/statements", response_model=None, responses=CSV_RESPONSE)
async def get_statements(
    ctx: CtxDep,
    month: str = Query("", description="YYYY-MM, a UTC calendar month"),
    customer: str = Query("", description="a provider's: one customer's orgid (none: all its customers)"),
    format: str = Query("json", description="json or csv"),
) -> dict[str, Any] | Response:
    """`month=YYYY-MM`: a customer's own statement; a provider admin's one customer's (`customer=<orgid>`) or all
    its customers' with their sum. `format=csv`: the same as a download."""
    if format not in FORMATS:
        raise InvalidParameter("format", "应为 json 或 csv")
    answer = await statements.statement(ctx, {"month": month, "customer": customer})
    if format == "json":
        return answer
    headers = {"Content-Disposition": f'attachment; filename="statement-{answer["month"]}.csv"'}
    return Response(BOM + statement_csv(answer), media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/revenue")
async def get_revenue(
    ctx: CtxDep, month: str = Query("", description="YYYY-MM, a UTC calendar month")
) -> dict[str, Any]:
    """A provider admin's takings of `month=YYYY-MM` from its customers by center, cluster and component type."""
    return await statements.revenue(ctx, {"month": month})


# Names and notes people typed: a cell starting so is a formula to a spreadsheet (CSV injection), made text here.
TEXT_COLUMNS = ("customer", "instance", "center", "cluster", "model", "note")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _as_text(row: dict[str, Any]) -> dict[str, Any]:
    for key in TEXT_COLUMNS:
        value = row.get(key)
        if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
            row[key] = "'" + value
    return row


def statement_csv(answer: Mapping[str, Any]) -> str:
    """One row per instance line (an instance without lines: one row), per credit and per total; a provider's
    every customer one after the other, then the grand totals."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for one in answer.get("customers", [answer]):
        writer.writerows(_as_text(row) for row in _customer_rows(one))
    if "customers" in answer:
        writer.writerows(_total_rows("grand_total", {}, answer["totals"]))
    return out.getvalue()


def _customer_rows(one: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    who = {"customer_id": one["customer"]["orgid"], "customer": one["customer"]["name"]}
    for instance in one["instances"]:
        place = {
            **who, "instance_id": instance["instance_id"], "instance": instance["name"], "center": instance["center"],
            "cluster": instance["cluster"], **instance["period"],
        }  # fmt: skip
        for line in instance["lines"]:
            yield {"row": "line", **place, **{key: line[key] for key in COLUMNS if key in line}}
        if not instance["lines"]:
            yield {"row": "line", **place, "amount": instance["net"]}
    for entry in one["credits"]:
        yield {"row": "credit", **who, "from": entry["at"], "amount": entry["amount"], "note": entry["note"]}
    yield from _total_rows("total", who, one["totals"])


def _total_rows(kind: str, who: Mapping[str, Any], totals: Mapping[str, str]) -> Iterator[dict[str, Any]]:
    for name in TOTALS:
        yield {"row": kind, **who, "type": name, "amount": totals[name]}
