"""Demo data: a company with 2 regions, 4 stores and 2 sales teams, people in every role, and some
instances in flight. Loaded by `flask --app wsgi demo` and by `make run`."""
import sqlalchemy as sa

from engine import clock, demo_instances, org
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
    ("lin.zhuguan", "林主管", ["sales_manager@EAST"], "zh"),  # the sales manager above the eastern stores
    ("xin.yi", "新员工一", ["rep@TEAM-E"], "zh"),
    ("xin.er", "新员工二", ["rep@TEAM-E"], "zh"),
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
        progress("starting the five workflows across the stores (some overdue)…")
        demo_instances.create(clock.now())
    lines = [f"{'login':<14} {'password':<14} roles"]
    lines += [f"{login:<14} {PASSWORD:<14} {', '.join(roles)}" for login, _, roles, _ in PEOPLE]
    return lines
