"""Count sheets: the stocktake's count and recount forms list the SKUs to count (from the book, or the lines
flagged for a recount), so a counter types only the numbers; rows left uncounted are not sent."""

SHEETS = {("stocktake", "enter_counts"): "book", ("stocktake", "recount"): "flagged"}
TABLE, KEY, VALUE = "lines", "sku", "counted"


def is_sheet(workflow: str, trigger: str) -> bool:
    return (workflow, trigger) in SHEETS


def prefill(workflow: str, trigger: str, doc: dict) -> dict:
    """Form values listing the SKUs to count, with their names as hints."""
    if SHEETS.get((workflow, trigger)) == "book":
        skus = [(line["sku"], line.get("name", "")) for line in doc.get("book", [])]
    else:
        skus = [(row["sku"], row.get("name", "")) for row in doc.get("variances", []) if row.get("large")]
    values = {}
    for n, (sku, name) in enumerate(skus):
        values[f"{TABLE}.{n}.{KEY}"] = sku
        values[f"_names.{n}"] = name
    return values


def counted_only(form) -> dict:
    """The posted form without the sheet rows nobody counted."""
    data = form.to_dict()
    for key in [k for k in data if k.startswith(f"{TABLE}.") and k.endswith(f".{KEY}")]:
        row = key[: -len(KEY)]
        if not (data.get(row + VALUE) or "").strip():
            data.pop(key)
    return data
