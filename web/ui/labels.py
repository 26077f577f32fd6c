"""Field labels for the generated forms, in the page language (field names are the schemas' keys)."""
from flask_babel import lazy_gettext as _l

LABELS = {
    "month": _l("Month"), "targets": _l("Targets"), "amount": _l("Sales amount"), "new_customers": _l("New customers"),
    "visits": _l("Visits"), "actions": _l("Actions"), "title": _l("Title"), "detail": _l("Detail"), "week": _l("Week"),
    "budget": _l("Budget"), "notes": _l("Notes"), "actuals": _l("Actuals"), "reasons": _l("Reasons"),
    "next_actions": _l("Next actions"), "book": _l("Book stock"), "sku": _l("SKU"), "name": _l("Name"),
    "quantity": _l("Quantity"), "zone": _l("Zone / counter"), "lines": _l("Lines"), "counted": _l("Counted"),
    "unit_cost": _l("Unit cost"),
    "handover_at": _l("Handover time"), "shift": _l("Shift"), "counts": _l("Counts"),
    "cash_expected": _l("Cash expected"), "cash_counted": _l("Cash counted"), "receipts_total": _l("Receipts total"),
    "goods": _l("Goods"), "expected": _l("Expected"), "full_count": _l("All goods counted"), "cash": _l("Cash"),
    "customer": _l("Customer"), "contact": _l("Contact"), "channel": _l("Channel"), "order_ref": _l("Order number"),
    "category": _l("Category"), "severity": _l("Severity"), "description": _l("Description"),
    "assignee": _l("Assignee (login)"), "resolution": _l("Resolution"), "satisfaction": _l("Satisfaction (1-5)"),
    "follow_up_notes": _l("Follow-up notes"), "reason": _l("Reason"), "start_date": _l("Start date"),
    "stages": _l("Stages"), "days_per_stage": _l("Training days per stage"),
    "rest_days_per_stage": _l("Rest days per stage"), "evening_start": _l("Evening session starts"),
    "evening_hours": _l("Evening hours"), "trainer": _l("Trainer (login)"),
    "trainees": _l("Trainees (one login per line)"), "trainee": _l("Trainee"), "observation": _l("Observation"),
    "rating": _l("Rating (1-5)"), "scores": _l("Scores (login: score, one per line)"), "summary": _l("Summary"),
    "customer_handover": _l("Customer handover"), "comment": _l("Comment"), "file": _l("File"),
    "data": _l("Data"), "org_unit": _l("Org unit"), "discount_percent": _l("Discount %"),
    "starts_at": _l("From"), "ends_at": _l("Until"), "day": _l("Day"),
    "sales": _l("Sales lines"), "stock_cards": _l("Stock cards"), "opening": _l("Opening"),
    "received": _l("Received"), "sold": _l("Sold"), "closing": _l("Closing"), "close_at": _l("Close starts"),
}


def label(name: str) -> str:
    """The label for a field name; unknown names are shown as written."""
    found = LABELS.get(name)
    return str(found) if found is not None else name.replace("_", " ")


# Values of choice fields (complaint channel, category, severity; handover shift).
CHOICES = {
    "low": _l("low"), "medium": _l("medium"), "high": _l("high"), "critical": _l("critical"),
    "store": _l("in store"), "phone": _l("phone"), "wechat": _l("WeChat"), "online": _l("online"), "other": _l("other"),
    "product_quality": _l("product quality"), "service": _l("service"), "delivery": _l("delivery"),
    "price": _l("price"), "return_refund": _l("return / refund"), "midday": _l("midday"), "evening": _l("evening"),
}


def choice(value) -> str:
    """A choice value in words; unknown values are shown as they are."""
    found = CHOICES.get(str(value))
    return str(found) if found is not None else str(value)


KINDS = {"company": _l("company"), "region": _l("region"), "store": _l("store"), "team": _l("team")}


def unit_kind(kind: str) -> str:
    """An org unit's kind in words."""
    found = KINDS.get(kind)
    return str(found) if found is not None else kind
