"""Count sheets: the stocktake's count and recount forms list the SKUs to count (from the book, or the lines
flagged for a recount), so a counter types only the numbers; rows left uncounted are not sent. The approval of
variances lists the flagged lines the same way, for a reason each."""

# (workflow, trigger) → (which SKUs, the table, its key column, the column typed in)
SHEETS = {("stocktake", "enter_counts"): ("book", "lines", "sku", "counted"),
          ("stocktake", "recount"): ("flagged", "lines", "sku", "counted"),
          ("stocktake", "approve_variances"): ("flagged", "reasons", "sku", "reason")}


def is_sheet(workflow: str, trigger: str) -> bool:
    return (workflow, trigger) in SHEETS


def prefill(workflow: str, trigger: str, doc: dict) -> dict:
    """Form values listing the SKUs to count, with their names as hints."""
    source, table, key, _ = SHEETS[(workflow, trigger)]
    if source == "book":
        skus = [(line["sku"], line.get("name", "")) for line in doc.get("book", [])]
    else:
        skus = [(row["sku"], row.get("name", "")) for row in doc.get("variances", []) if row.get("large")]
    values = {}
    for n, (sku, name) in enumerate(skus):
        values[f"{table}.{n}.{key}"] = sku
        values[f"_names.{n}"] = name
    return values


def counted_only(workflow: str, trigger: str, form) -> dict:
    """The posted form without the sheet rows left empty (nobody counted them, or gave no reason)."""
    _, table, key, value = SHEETS[(workflow, trigger)]
    data = form.to_dict()
    for name in [k for k in data if k.startswith(f"{table}.") and k.endswith(f".{key}")]:
        row = name[: -len(key)]
        if not (data.get(row + value) or "").strip():
            data.pop(name)
    return data
