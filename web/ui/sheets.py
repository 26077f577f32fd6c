"""Sheets: forms whose rows the instance already knows, so a person types only the numbers. The stocktake's count
and recount forms list the SKUs to count (from the book, or the lines flagged for a recount), and its approval of
variances lists the flagged lines the same way, for a reason each; the evening close's allocation list (配货清单)
comes drawn from the day's 圈圈账, quantities filled in, for the business manager to confirm or adjust. Rows whose
number (or reason) is left blank are not sent."""
from dataclasses import dataclass


@dataclass(frozen=True)
class Sheet:
    source: str              # where the rows come from: "book", "flagged", "allocation"
    value: str = "counted"   # what is typed on each row; a row without it is not sent
    table: str = "lines"
    key: str = "sku"


SHEETS = {("stocktake", "enter_counts"): Sheet("book"), ("stocktake", "recount"): Sheet("flagged"),
          ("stocktake", "approve_variances"): Sheet("flagged", value="reason", table="reasons"),
          ("evening_close", "confirm_allocation"): Sheet("allocation", value="quantity")}


def is_sheet(workflow: str, trigger: str) -> bool:
    return (workflow, trigger) in SHEETS


def prefill(workflow: str, trigger: str, doc: dict) -> dict:
    """Form values listing the rows, with their names as hints (the allocation list: its own names and numbers)."""
    sheet = SHEETS[(workflow, trigger)]
    values = {}
    if sheet.source == "allocation":
        for n, line in enumerate((doc.get("allocation") or {}).get("lines", [])):
            for name in (sheet.key, "name", sheet.value):
                values[f"{sheet.table}.{n}.{name}"] = str(line.get(name, ""))
        return values
    if sheet.source == "book":
        rows = [(line["sku"], line.get("name", "")) for line in doc.get("book", [])]
    else:
        rows = [(row["sku"], row.get("name", "")) for row in doc.get("variances", []) if row.get("large")]
    for n, (sku, name) in enumerate(rows):
        values[f"{sheet.table}.{n}.{sheet.key}"] = sku
        values[f"_names.{n}"] = name
    return values


def counted_only(workflow: str, trigger: str, form) -> dict:
    """The posted form without the sheet rows whose number (or reason) was left blank."""
    sheet = SHEETS[(workflow, trigger)]
    data = form.to_dict()
    for key in [k for k in data if k.startswith(f"{sheet.table}.") and k.endswith(f".{sheet.key}")]:
        row = key[: -len(sheet.key)]
        if not (data.get(row + sheet.value) or "").strip():
            for name in [k for k in data if k.startswith(row)]:
                data.pop(name)
    return data
