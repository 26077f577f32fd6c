"""The org tree: who holds a role at a unit or the nearest unit above, who is whose manager, delegations."""
from datetime import timedelta

import pytest

from engine import org
from engine.db import db
from engine.errors import InvalidInput


def logins(holders):
    return sorted((h.user.login, h.on_behalf_of.login if h.on_behalf_of else None) for h in holders)


def test_nearest_holder_at_or_above_the_unit(people, clock):
    s1, s3 = org.unit_by_code("S1"), org.unit_by_code("S3")
    assert logins(org.holders("store_manager", s1)) == [("sm1", None), ("sm1asst", None)]
    assert logins(org.holders("regional_manager", s1)) == [("east", None)]  # region, not HQ
    assert logins(org.holders("regional_manager", s3)) == [("south", None)]
    assert logins(org.holders("accountant", s1)) == [("acct", None)]  # only at HQ
    assert org.holders("sales_manager", s3) == []  # T1 is not above S3


def test_role_at_a_unit_covers_the_units_below(people):
    s1, s3 = org.unit_by_code("S1"), org.unit_by_code("S3")
    assert org.roles_at(people["east"], s1) == {"regional_manager"}
    assert org.roles_at(people["east"], s3) == set()
    assert org.unit_by_code("EAST").contains(s1) and not org.unit_by_code("EAST").contains(s3)


def test_manager_of(people, clock):
    s1, t1 = org.unit_by_code("S1"), org.unit_by_code("T1")
    assert logins(org.manager_of(people["a1"], s1)) == [("sm1", None), ("sm1asst", None)]
    assert logins(org.manager_of(people["sm1"], s1)) == [("east", None)]
    assert logins(org.manager_of(people["rep1"], t1)) == [("salesmgr", None)]
    assert logins(org.manager_of(people["east"], s1)) == [("boss", None)]  # next level up, not themselves
    assert org.manager_of(people["boss"], s1) == []  # the top has no manager
    assert org.manager_of(people["a3"], s1) == []  # no role there at all


def test_out_of_office_holder_is_replaced_by_their_delegate(people, clock):
    s1 = org.unit_by_code("S1")
    org.delegate(people["east"], people["sm2"], clock.now(), clock.now() + timedelta(days=7))
    db.session.commit()
    assert logins(org.manager_of(people["sm1"], s1)) == [("sm2", "east")]
    clock.advance(days=8)
    assert logins(org.manager_of(people["sm1"], s1)) == [("east", None)]


def test_inactive_people_hold_nothing(people, clock):
    people["east"].active = False
    db.session.commit()
    assert logins(org.holders("regional_manager", org.unit_by_code("S1"))) == [("boss", None)]


@pytest.mark.parametrize("call, field", [
    (lambda p: org.add_unit("S1", "again", "store", "EAST"), "code"),
    (lambda p: org.add_unit("S9", "x", "planet", "EAST"), "kind"),
    (lambda p: org.add_unit("S9", "x", "store", "NOPE"), "org_unit"),
    (lambda p: org.add_user("a1", "x", "x@example.com", "pw"), "login"),
    (lambda p: org.add_user("new", "x", "x@example.com", "pw", [("wizard", "S1")]), "role"),
    (lambda p: org.add_user("new", "x", "x@example.com", "pw", locale="fr"), "locale"),
    (lambda p: org.delegate(p["sm1"], p["sm1"], p["clock"], p["clock"] + timedelta(days=1)), "to_user"),
    (lambda p: org.delegate(p["sm1"], p["dep1"], p["clock"], p["clock"]), "ends_at"),
])
def test_bad_org_input_is_refused_with_the_field(people, clock, call, field):
    with pytest.raises(InvalidInput) as e:
        call({**people, "clock": clock.now()})
    assert e.value.details["field"] == field
