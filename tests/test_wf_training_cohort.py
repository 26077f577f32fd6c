"""Training cohort: the schedule from the cohort's parameters on the business calendar, observations per
trainee per day, stage assessments, the top-rep candidate, and the daily 23:00 deadline."""
from datetime import timedelta

import pytest

import engine
from engine import org
from engine.db import db
from engine.errors import InvalidPayload, NotPermitted
from tests.flows import mails, refused, reload, run_due

COHORT = {"name": "2026年11月新员工班", "start_date": "2026-11-02", "stages": 2, "days_per_stage": 2,
          "rest_days_per_stage": 1, "evening_start": "19:00", "evening_hours": "2", "trainees": ["new1", "new2"]}


@pytest.fixture
def cohort(people):
    for login in ("new1", "new2"):
        org.add_user(login, f"新人{login[-1]}", f"{login}@example.com", "pw", [("rep", "T1")])
    org.add_user("regsales", "华东销售主管", "regsales@example.com", "pw", [("sales_manager", "EAST")])
    db.session.commit()
    return engine.start("training_cohort", "EAST", people["trainer"], COHORT)


def observe_all(inst, people, note="认真听讲"):
    for trainee in COHORT["trainees"]:
        engine.fire(inst.id, "record_observation", people["trainer"], {"trainee": trainee, "observation": note})


def test_the_schedule_follows_the_parameters_and_the_calendar(cohort):
    days = [(d["date"], d["stage"], d["kind"]) for d in cohort.data["schedule"]]
    assert days == [("2026-11-02", 1, "training"), ("2026-11-03", 1, "training"), ("2026-11-04", 1, "rest"),
                    ("2026-11-05", 2, "training"), ("2026-11-06", 2, "training")]
    assert cohort.data["trainer"] == "trainer" and cohort.state == "waiting"


def test_a_stage_that_crosses_a_holiday_skips_it(people, clock):
    inst = engine.start("training_cohort", "EAST", people["trainer"], COHORT | {
        "start_date": "2026-09-30", "stages": 1, "trainees": ["rep1"]})
    assert [d["date"] for d in inst.data["schedule"]] == ["2026-09-30", "2026-10-08"]  # National Day in between


def test_golden_path(app, people, clock, cohort):
    run_due(app, "2026-11-02T10:00:00+08:00")  # day 1 opened by itself at 09:00
    inst = reload(cohort)
    assert inst.state == "training_day" and inst.data["today"] == "2026-11-02"
    engine.fire(inst.id, "record_observation", people["trainer"], {"trainee": "new1", "observation": "主动迎客"})
    e = refused(InvalidPayload, inst, "end_day", people["trainer"])
    assert "new2" in str(e.errors)
    engine.fire(inst.id, "record_observation", people["trainer"], {"trainee": "new2", "observation": "产品不熟"})
    assert engine.fire(inst.id, "end_day", people["trainer"]).state == "waiting"
    run_due(app, "2026-11-03T09:00:00+08:00")
    observe_all(inst, people)
    assert engine.fire(inst.id, "end_day", people["trainer"]).state == "stage_assessment"
    refused(InvalidPayload, inst, "assess_stage", people["trainer"], {"scores": {"new1": 80}, "summary": "…"})
    inst = engine.fire(inst.id, "assess_stage", people["trainer"], {"scores": {"new1": 85, "new2": 70},
                                                                   "summary": "第一阶段完成"})
    assert inst.state == "waiting" and inst.data["next_day_at"] == "2026-11-05T09:00:00+08:00"  # after the rest day
    for day in ("2026-11-05", "2026-11-06"):
        run_due(app, f"{day}T09:00:00+08:00")
        observe_all(inst, people)
        engine.fire(inst.id, "end_day", people["trainer"])
    inst = engine.fire(inst.id, "assess_stage", people["trainer"], {"scores": {"new1": 92, "new2": 75},
                                                                   "summary": "结业考核"})
    assert inst.state == "selection"
    refused(InvalidPayload, inst, "select_candidate", people["trainer"], {"trainee": "a1", "reason": "x"})
    engine.fire(inst.id, "select_candidate", people["trainer"],
                {"trainee": "new1", "reason": "业绩突出，培养为金牌销售员"})
    inst = engine.fire(inst.id, "complete", people["trainer"], {"customer_handover": "移交20位老客户"})
    assert inst.state == "completed"
    assert len(inst.data["observations"]) == 8 and [a["stage"] for a in inst.data["assessments"]] == [1, 2]


def test_refusals(people, cohort):
    with pytest.raises(InvalidPayload) as e:
        engine.start("training_cohort", "EAST", people["trainer"], COHORT | {"stages": 0, "trainees": ["ghost"]})
    assert {"stages"} <= set(e.value.errors)
    with pytest.raises(InvalidPayload) as e:
        engine.start("training_cohort", "EAST", people["trainer"], COHORT | {"trainees": ["ghost", "a3"]})
    assert "ghost" in str(e.value.errors["trainees"]) and "a3" in str(e.value.errors["trainees"])
    with pytest.raises(NotPermitted):
        engine.start("training_cohort", "EAST", people["a1"], COHORT)


def test_missing_observations_remind_the_trainer_then_escalate(app, people, clock, smtp, cohort):
    run_due(app, "2026-11-02T10:00:00+08:00")
    refused(NotPermitted, cohort, "record_observation", people["a1"], {"trainee": "new1", "observation": "x"})
    run_due(app, "2026-11-02T21:00:00+08:00")
    assert mails(smtp, "【提醒】") == ["trainer"]
    run_due(app, "2026-11-02T23:00:00+08:00")
    assert mails(smtp, "【超时升级】") == ["regsales"]


def test_the_trainer_holds_the_role_and_trains_others(people, clock):
    with pytest.raises(InvalidPayload) as e:  # a rep made the cohort's trainer and its sole trainee
        engine.start("training_cohort", "EAST", people["trainer"], COHORT | {"trainer": "rep1", "trainees": ["rep1"]})
    assert "trainer role" in str(e.value.errors["trainer"]) and "rep1" in str(e.value.errors["trainees"])
    with pytest.raises(InvalidPayload) as e:  # nor does the trainer train themselves
        engine.start("training_cohort", "EAST", people["trainer"], COHORT | {"trainees": ["trainer", "rep1"]})
    assert "trainer" in str(e.value.errors["trainees"]) and "trainer" not in e.value.errors
    with pytest.raises(InvalidPayload) as e:  # a sales manager who sets it up names a trainer
        engine.start("training_cohort", "T1", people["salesmgr"], COHORT | {"trainees": ["rep1"]})
    assert "salesmgr" in str(e.value.errors["trainer"])
    inst = engine.start("training_cohort", "T1", people["salesmgr"], COHORT | {"trainer": "trainer",
                                                                            "trainees": ["rep1"]})
    assert inst.data["trainer"] == "trainer"


@pytest.mark.parametrize("start_date", ["1900-01-01", "2025-10-01", "2027-12-01"])
def test_a_cohort_starts_within_a_year_of_now(people, clock, start_date):
    with pytest.raises(InvalidPayload) as e:
        engine.start("training_cohort", "EAST", people["trainer"], COHORT | {"start_date": start_date,
                                                                           "trainees": ["rep1"]})
    assert set(e.value.errors) == {"start_date"}


def test_nobody_observes_scores_or_selects_themselves(app, people, clock):
    # rep1 stands in for the trainer while she is away, and is in the cohort
    org.delegate(people["trainer"], people["rep1"], clock.now(), clock.now() + timedelta(days=30))
    db.session.commit()
    inst = engine.start("training_cohort", "EAST", people["trainer"], COHORT | {
        "stages": 1, "days_per_stage": 1, "trainees": ["rep1", "a1"]})
    run_due(app, "2026-11-02T10:00:00+08:00")
    e = refused(InvalidPayload, inst, "record_observation", people["rep1"], {"trainee": "rep1", "observation": "优秀"})
    assert "yourself" in str(e.errors["trainee"])
    engine.fire(inst.id, "record_observation", people["rep1"], {"trainee": "a1", "observation": "认真"})
    engine.fire(inst.id, "record_observation", people["trainer"], {"trainee": "rep1", "observation": "主动"})
    engine.fire(inst.id, "end_day", people["trainer"])
    e = refused(InvalidPayload, inst, "assess_stage", people["rep1"], {"scores": {"rep1": 100, "a1": 60},
                                                                      "summary": "x"})
    assert "yourself" in str(e.errors["scores"])
    engine.fire(inst.id, "assess_stage", people["trainer"], {"scores": {"rep1": 90, "a1": 60}, "summary": "完成"})
    e = refused(InvalidPayload, inst, "select_candidate", people["rep1"], {"trainee": "rep1", "reason": "我最好"})
    assert "yourself" in str(e.errors["trainee"])
    assert engine.fire(inst.id, "select_candidate", people["trainer"],
                       {"trainee": "rep1", "reason": "业绩突出"}).state == "selected"
