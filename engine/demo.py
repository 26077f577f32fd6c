"""Demo data: a company with 2 regions, 4 stores and 2 sales teams, people in every role, and some
instances in flight. Loaded by `flask --app wsgi demo` and by `make run`."""
import sqlalchemy as sa

from engine import org, runtime
from engine.db import db

PASSWORD = "signoff-demo"

UNITS = [  # code, name, kind, parent
    ("HQ", "星河零售有限公司", "company", None),
    ("EAST", "华东大区", "region", "HQ"),
    ("SOUTH", "华南大区", "region", "HQ"),
    ("SH01", "上海南京路店", "store", "EAST"),
    ("HZ01", "杭州西湖店", "store", "EAST"),
    ("GZ01", "广州天河店", "store", "SOUTH"),
    ("SZ01", "深圳福田店", "store", "SOUTH"),
    ("TEAM-E", "华东销售一组", "team", "EAST"),
    ("TEAM-S", "华南销售一组", "team", "SOUTH"),
]

PEOPLE = [  # login, name, roles, locale
    ("admin", "系统管理员", ["admin@HQ"], "zh"),
    ("zhao.zong", "赵总", ["regional_manager@HQ"], "zh"),
    ("qian.kuaiji", "钱会计", ["accountant@HQ"], "zh"),
    ("sun.jingli", "孙经理", ["regional_manager@EAST"], "zh"),
    ("zhou.jingli", "周经理", ["regional_manager@SOUTH"], "en"),
    ("wu.zhuguan", "吴主管", ["sales_manager@TEAM-E"], "zh"),
    ("xu.zhuguan", "徐主管", ["sales_manager@TEAM-S"], "zh"),
    ("zheng.yewu", "郑业务", ["rep@TEAM-E"], "zh"),
    ("wang.yewu", "王业务", ["rep@TEAM-E"], "zh"),
    ("feng.yewu", "冯业务", ["rep@TEAM-S"], "en"),
    ("chen.peixun", "陈培训", ["trainer@EAST"], "zh"),
    ("he.kefu", "何客服", ["service_agent@EAST"], "zh"),
    ("lv.kefu", "吕客服", ["service_agent@SOUTH"], "zh"),
]
for i, store in enumerate(["SH01", "HZ01", "GZ01", "SZ01"], 1):
    PEOPLE += [
        (f"dianzhang{i}", f"{store}店长", [f"store_manager@{store}"], "zh"),
        (f"fudianzhang{i}", f"{store}副店长", [f"deputy_manager@{store}"], "zh"),
        (f"dianyuan{i}a", f"{store}店员甲", [f"assistant@{store}"], "zh"),
        (f"dianyuan{i}b", f"{store}店员乙", [f"assistant@{store}"], "zh"),
    ]


def load(progress=lambda line: None) -> list[str]:
    """Create the demo data unless it is already there; returns the login table to print."""
    if db.session.scalar(sa.select(org.OrgUnit.id).where(org.OrgUnit.code == "HQ")):
        progress("demo data already loaded")
    else:
        progress(f"creating {len(UNITS)} org units and {len(PEOPLE)} people…")
        for code, name, kind, parent in UNITS:
            org.add_unit(code, name, kind, parent)
        for login, name, roles, locale in PEOPLE:
            org.add_user(login, name, f"{login}@example.com", PASSWORD,
                         [tuple(r.split("@")) for r in roles], locale=locale)
        db.session.commit()
        progress("starting sample instances…")
        _instances()
    lines = [f"{'login':<14} {'password':<14} roles"]
    lines += [f"{login:<14} {PASSWORD:<14} {', '.join(roles)}" for login, _, roles, _ in PEOPLE]
    return lines


def _instances() -> None:
    user = org.user_by_login
    request = {"customer": "李女士", "amount": "1280.00", "discount_percent": "15", "reason": "老客户生日"}
    runtime.start("discount_request", "SH01", user("dianyuan1a"), request)
    submitted = runtime.start("discount_request", "SH01", user("dianyuan1b"), {**request, "customer": "张先生"})
    runtime.fire(submitted.id, "submit", user("dianyuan1b"))
    large = runtime.start("discount_request", "GZ01", user("dianyuan3a"),
                          {**request, "customer": "广州贸易公司", "amount": "56000.00", "discount_percent": "25"})
    runtime.fire(large.id, "submit", user("dianyuan3a"))
    runtime.fire(large.id, "approve", user("dianzhang3"))
    done = runtime.start("discount_request", "HZ01", user("dianyuan2a"), {**request, "customer": "刘女士"})
    runtime.fire(done.id, "submit", user("dianyuan2a"))
    runtime.fire(done.id, "approve", user("dianzhang2"))
