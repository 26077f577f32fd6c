"""New-hire training cohort (新员工培训): a cohort trained for a set number of stages of working days with
rest days between them, with evening sessions; the trainer observes each trainee by day and records it
(白天注意观察…做好记录), assesses each stage, and at the end selects the trainee to develop into a top sales
rep (金牌销售员) who can take over the trainer's customers (客户交接). Every number is a parameter of the
cohort, not a constant: start date, stages, training days per stage, rest days, evening hours."""
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from marshmallow import Schema, fields, validate

from engine import calendar, dates, org
from engine.definition import Deadline, Rung, State, Transition, Workflow
from engine.limits import CODE_MAX, TRAINEES_MAX
from workflows.common import Empty, day_window_errors, people_errors, t, user_at

DAY_STARTS = time(9, 0)
START_WINDOW = timedelta(days=366)  # a cohort starts at most a year back or a year ahead


class CohortSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    start_date = fields.Date(required=True, validate=dates.InSpan())
    stages = fields.Integer(required=True, validate=validate.Range(min=1, max=12))
    days_per_stage = fields.Integer(required=True, validate=validate.Range(min=1, max=30))  # training days
    rest_days_per_stage = fields.Integer(load_default=1, validate=validate.Range(min=0, max=7))
    evening_start = fields.String(load_default="19:00", validate=(validate.Length(equal=5),
                                                                  validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$")))
    evening_hours = fields.Decimal(load_default="2", places=1, as_string=True, validate=validate.Range(min=0, max=6))
    trainer = fields.String(load_default=None, validate=validate.Length(min=1, max=CODE_MAX))  # login; default: starter
    trainees = fields.List(fields.String(validate=validate.Length(min=1, max=CODE_MAX)), required=True,
                           validate=validate.Length(min=1, max=TRAINEES_MAX))


class ObservationSchema(Schema):
    trainee = fields.String(required=True, validate=validate.Length(min=1, max=CODE_MAX))
    observation = fields.String(required=True, validate=validate.Length(min=1, max=4000))
    rating = fields.Integer(load_default=None, validate=validate.Range(min=1, max=5))


class AssessmentSchema(Schema):
    scores = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=CODE_MAX)),
                         values=fields.Integer(validate=validate.Range(min=0, max=100)), required=True,
                         validate=validate.Length(max=TRAINEES_MAX))
    summary = fields.String(required=True, validate=validate.Length(min=1, max=4000))


class CandidateSchema(Schema):
    trainee = fields.String(required=True, validate=validate.Length(min=1, max=CODE_MAX))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=4000))


class CompleteSchema(Schema):
    customer_handover = fields.String(load_default="", validate=validate.Length(max=4000))  # 客户交接


DEFINITION = Workflow(
    name="training_cohort",
    version=1,
    title=t("新员工培训", "New-hire training cohort"),
    initial="waiting",
    start_roles=("trainer", "sales_manager"),
    start_schema=CohortSchema,
    start_validators=("people_in_post", "trainer_trains_others", "start_in_window"),
    on_start=("plan_schedule",),
    states=(
        State("waiting", t("等待下一培训日", "Until the next training day"),
              deadline=Deadline("0 minutes after next_day_at", ladder=(Rung("0", "fire", trigger="open_day"),))),
        State("training_day", t("培训日·记录观察", "Training day: observations"), assignee="assignee",
              deadline=Deadline("same day at 23:00", ladder=(Rung("-2 hours", "remind"),
                                                            Rung("0", "escalate", to="manager")))),
        State("stage_assessment", t("阶段考核", "Stage assessment"), assignee="assignee",
              deadline=Deadline("1 working day", ladder=(Rung("-4 working hours", "remind"),
                                                         Rung("0", "escalate", to="manager")))),
        State("selection", t("选拔金牌销售员", "Select the top-rep candidate"), assignee="assignee",
              deadline=Deadline("2 working days", ladder=(Rung("0", "escalate", to="manager"),))),
        State("selected", t("客户交接", "Customer handover"), assignee="assignee"),
        State("completed", t("已结业", "Completed"), final=True),
    ),
    transitions=(
        Transition("open_day", "waiting", "training_day", schema=Empty, after=("open_the_day",)),
        Transition("record_observation", "training_day", None, roles=("assignee",), schema=ObservationSchema,
                   validators=("trainee_in_cohort", "not_about_oneself"), after=("keep_observation",),
                   title=t("记录观察", "Record an observation")),
        Transition("end_day", "training_day", "stage_assessment", roles=("assignee",), schema=Empty,
                   validators=("everyone_observed",), conditions=("last_day_of_stage",),
                   title=t("结束当日", "End the day")),
        Transition("end_day", "training_day", "waiting", roles=("assignee",), schema=Empty,
                   validators=("everyone_observed",), unless=("last_day_of_stage",), after=("next_day",),
                   title=t("结束当日", "End the day")),
        Transition("assess_stage", "stage_assessment", "selection", roles=("assignee",), schema=AssessmentSchema,
                   validators=("scores_for_everyone", "not_about_oneself"), conditions=("last_stage",),
                   after=("keep_assessment",),
                   title=t("阶段考核", "Assess the stage")),
        Transition("assess_stage", "stage_assessment", "waiting", roles=("assignee",), schema=AssessmentSchema,
                   validators=("scores_for_everyone", "not_about_oneself"), unless=("last_stage",),
                   after=("keep_assessment", "next_day"), title=t("阶段考核", "Assess the stage")),
        Transition("select_candidate", "selection", "selected", roles=("assignee",), schema=CandidateSchema,
                   validators=("trainee_in_cohort", "not_about_oneself"),
                   title=t("选定金牌销售员培养对象", "Select the candidate")),
        Transition("complete", "selected", "completed", roles=("assignee", "sales_manager"), schema=CompleteSchema,
                   title=t("结业", "Complete")),
    ),
)

DEFINITIONS = [DEFINITION]


def schedule(start: date, stages: int, days_per_stage: int, rest_days: int, cal) -> list[dict]:
    """The cohort's days: each stage's training days (working days only), then its rest days."""
    days, day = [], start
    for stage in range(1, stages + 1):
        trained = 0
        while trained < days_per_stage:
            if cal.is_working_day(day):
                trained += 1
                days.append({"date": day.isoformat(), "stage": stage, "kind": "training",
                             "last_of_stage": trained == days_per_stage})
            day += timedelta(days=1)
        for _ in range(rest_days if stage < stages else 0):
            days.append({"date": day.isoformat(), "stage": stage, "kind": "rest"})
            day += timedelta(days=1)
    return days


def _training_days(doc: dict) -> list[dict]:
    return [d for d in doc["schedule"] if d["kind"] == "training"]


def _start_of(doc: dict, index: int, tz: ZoneInfo) -> str:
    day = date.fromisoformat(_training_days(doc)[index]["date"])
    return datetime.combine(day, DAY_STARTS, tzinfo=tz).isoformat()


# ---- validators, guards, hooks ----

def people_in_post(ctx) -> dict:
    unit = ctx.instance.org_unit
    errors = people_errors("trainees", ctx.data["trainees"], unit)
    if ctx.data.get("trainer"):
        errors.update(people_errors("trainer", [ctx.data["trainer"]], unit))
    return errors


def _logins(acting) -> set[str]:
    return {u.login for u in (acting.user, acting.on_behalf_of) if u is not None}


def trainer_trains_others(ctx) -> dict:
    """The trainer holds the trainer role at or above the cohort's unit, and neither the trainer nor whoever
    sets the cohort up is one of its trainees (they would observe, score and select themselves)."""
    unit, errors = ctx.instance.org_unit, {}
    login = ctx.data.get("trainer")
    trainer = user_at(login, unit) if login else ctx.acting.on_behalf_of or ctx.acting.user
    if trainer is not None and "trainer" not in org.roles_at(trainer, unit):
        errors["trainer"] = [f"'{trainer.login}' is not a trainer at this unit: name someone who holds the "
                             f"trainer role."]
    selves = ({trainer.login} if trainer else set()) | _logins(ctx.acting)
    if selves & set(ctx.data["trainees"]):
        errors["trainees"] = [f"The trainer and whoever sets up the cohort cannot be trainees: "
                              f"{', '.join(sorted(selves & set(ctx.data['trainees'])))}."]
    return errors


def start_in_window(ctx) -> dict:
    return day_window_errors("start_date", ctx.data["start_date"], ctx.now, ctx.instance.org_unit, START_WINDOW,
                             START_WINDOW)


def not_about_oneself(ctx) -> dict:
    """Nobody observes, scores or selects themselves (a trainee standing in for the trainer, say)."""
    selves = _logins(ctx.acting)
    if ctx.data.get("trainee") in selves:
        return {"trainee": ["You cannot record this about yourself."]}
    if selves & set(ctx.data.get("scores") or {}):
        return {"scores": ["You cannot score yourself."]}
    return {}


def plan_schedule(ctx) -> None:
    doc, inst = ctx.doc, ctx.instance
    starter = ctx.acting.on_behalf_of or ctx.acting.user
    trainer = user_at(doc["trainer"], inst.org_unit) if doc.get("trainer") else starter
    inst.assignee_id = trainer.id
    doc["trainer"] = trainer.login
    doc["schedule"] = schedule(date.fromisoformat(doc["start_date"]), doc["stages"], doc["days_per_stage"],
                               doc["rest_days_per_stage"], calendar.for_unit(inst.org_unit))
    doc.update(day_index=0, stage=1, observations=[], assessments=[])
    doc["next_day_at"] = _start_of(doc, 0, ZoneInfo(inst.org_unit.timezone))


def open_the_day(ctx) -> None:
    ctx.doc["today"] = _training_days(ctx.doc)[ctx.doc["day_index"]]["date"]


def trainee_in_cohort(ctx) -> dict:
    if ctx.data["trainee"] not in ctx.doc["trainees"]:
        return {"trainee": ["Not a trainee of this cohort."]}
    return {}


def keep_observation(ctx) -> None:
    entry = {"date": ctx.doc["today"], "trainee": ctx.doc.pop("trainee"), "observation": ctx.doc.pop("observation"),
             "rating": ctx.doc.pop("rating", None), "at": ctx.now.isoformat()}
    ctx.doc["observations"] = [*ctx.doc["observations"], entry]


def everyone_observed(ctx) -> dict:
    seen = {o["trainee"] for o in ctx.doc["observations"] if o["date"] == ctx.doc["today"]}
    missing = [login for login in ctx.doc["trainees"] if login not in seen]
    return {"observations": [f"No observation today for: {', '.join(missing)}."]} if missing else {}


def last_day_of_stage(ctx) -> bool:
    return _training_days(ctx.doc)[ctx.doc["day_index"]]["last_of_stage"]


def next_day(ctx) -> None:
    doc = ctx.doc
    doc["day_index"] += 1
    doc["stage"] = _training_days(doc)[doc["day_index"]]["stage"]
    doc["next_day_at"] = _start_of(doc, doc["day_index"], ZoneInfo(ctx.instance.org_unit.timezone))


def scores_for_everyone(ctx) -> dict:
    missing = [login for login in ctx.doc["trainees"] if login not in ctx.data["scores"]]
    extra = [login for login in ctx.data["scores"] if login not in ctx.doc["trainees"]]
    errors = []
    if missing:
        errors.append(f"No score for: {', '.join(missing)}.")
    if extra:
        errors.append(f"Not in this cohort: {', '.join(extra)}.")
    return {"scores": errors} if errors else {}


def last_stage(ctx) -> bool:
    return ctx.doc["stage"] >= ctx.doc["stages"]


def keep_assessment(ctx) -> None:
    entry = {"stage": ctx.doc["stage"], "scores": ctx.doc.pop("scores"), "summary": ctx.doc.pop("summary"),
             "at": ctx.now.isoformat()}
    ctx.doc["assessments"] = [*ctx.doc["assessments"], entry]
