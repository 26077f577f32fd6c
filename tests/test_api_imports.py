"""Bulk imports through the API: a stocktake's book stock as CSV, annual targets."""
import io

import openpyxl

from engine import org, stock
from tests.api_fixtures import api_fixture  # noqa: F401


def csv_file(text: str, name: str = "book.csv"):
    return {"file": (io.BytesIO(text.encode("utf-8-sig")), name)}


def test_book_stock_from_a_csv_upload(api):
    inst = api.start(as_="sm1", workflow="stocktake", data={"month": "2026-11"})
    r = api.post(f"/instances/{inst['id']}/book-stock", as_="dep1",
                 data=csv_file("编码,名称,数量\nA100,羊毛衫,100\nB200,围巾,50\n"), content_type="multipart/form-data")
    assert r.status_code == 200, r.json
    assert [line["sku"] for line in r.json["data"]["book"]] == ["A100", "B200"] and r.json["version"] == 2
    bad = api.post(f"/instances/{inst['id']}/book-stock", as_="dep1",
                   data=csv_file("sku,name,quantity\nA100,羊毛衫,lots\n"), content_type="multipart/form-data")
    assert bad.status_code == 422 and "line 2" in bad.json["errors"]
    refused = api.post(f"/instances/{inst['id']}/book-stock", as_="a1",
                       data=csv_file("sku,quantity\nA100,1\n"), content_type="multipart/form-data")
    assert refused.status_code == 403
    stranger = api.post(f"/instances/{inst['id']}/book-stock", as_="sm3",
                        data=csv_file("sku,quantity\nA100,1\n"), content_type="multipart/form-data")
    assert stranger.status_code == 404
    assert api.get(f"/instances/{inst['id']}", as_="sm1").json["version"] == 2


def test_annual_targets_set_and_read_by_admins(api):
    body = {"targets": [{"year": 2026, "org_unit": "T1", "user": "rep1", "amount": "1200000", "new_customers": 120,
                         "visits": 2400}]}
    r = api.put("/targets", as_="admin", json=body)
    assert r.status_code == 200, r.json
    assert r.json == [{"year": 2026, "org_unit": "T1", "user": "rep1", "amount": "1200000.00", "new_customers": 120,
                       "visits": 2400}]
    assert api.get("/targets?year=2026", as_="admin").json == r.json
    plan = api.start(as_="rep1", unit="T1", workflow="monthly_plan", data={"month": "2026-12"})
    assert plan["data"]["targets"]["amount"] == "111290.32"  # pre-filled from the target just set
    assert api.put("/targets", as_="sm1", json=body).status_code == 403
    unknown = api.put("/targets", as_="admin", json={"targets": [body["targets"][0] | {"org_unit": "MARS"}]})
    assert unknown.status_code in (404, 422)
    assert api.put("/targets", as_="admin", json={"targets": []}).status_code == 422


def test_book_stock_with_unit_costs_from_an_excel_upload(api):
    inst = api.start(as_="sm1", workflow="stocktake", data={"month": "2026-11"})
    wb = openpyxl.Workbook()
    for row in (["编码", "名称", "数量", "单价"], ["A100", "羊毛衫", 100, 258], ["B200", "围巾", 50, 35.5]):
        wb.active.append(row)
    out = io.BytesIO()
    wb.save(out)
    r = api.post(f"/instances/{inst['id']}/book-stock", as_="dep1", data={"file": (io.BytesIO(out.getvalue()),
                 "book.xlsx")}, content_type="multipart/form-data")
    assert r.status_code == 200, r.json
    assert [(b["sku"], b["unit_cost"]) for b in r.json["data"]["book"]] == [("A100", "258.00"), ("B200", "35.50")]


def test_the_stocktake_report_downloads_for_whoever_may_see_the_stocktake(api):
    inst = api.start(as_="sm1", workflow="stocktake", data={"month": "2026-11", "book": [
        {"sku": "A100", "name": "羊毛衫", "quantity": 10, "unit_cost": "258.00"}]})
    api.post(f"/instances/{inst['id']}/actions/enter_counts", as_="a1",
             json={"data": {"zone": "A", "lines": [{"sku": "A100", "counted": 9}]}})
    assert api.post(f"/instances/{inst['id']}/actions/submit_counts", as_="a1", json={}).status_code == 200
    r = api.get(f"/instances/{inst['id']}/report.xlsx", as_="sm1", headers={"Accept-Language": "en"})
    assert r.status_code == 200 and r.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = openpyxl.load_workbook(io.BytesIO(r.data)).active
    row = next(row for row in sheet.iter_rows(values_only=True) if row[0] == "A100")
    assert row[:7] == ("A100", "羊毛衫", 10, 9, -1, 258, -258)
    assert next(sheet.iter_rows(values_only=True))[0] == "Month-end stocktake report"
    page = api.get(f"/instances/{inst['id']}/report.html", as_="sm1")
    assert page.status_code == 200 and "月末盘存报表" in page.get_data(as_text=True)
    assert api.get(f"/instances/{inst['id']}/report.xlsx", as_="sm3").status_code == 404  # another store's


def xlsx_file(rows, name="stock.xlsx"):
    from openpyxl import Workbook

    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    out.seek(0)
    return {"file": (out, name)}


def test_a_stores_stock_list_from_csv_or_excel(api):
    r = api.put("/org-units/S1/stock-list", as_="sm1", data=csv_file("编码,名称,单价\nA100,羊毛衫,120\nB200,围巾,\n",
                                                                   "stock.csv"), content_type="multipart/form-data")
    assert r.status_code == 200, r.json
    assert r.json["source"] == "import" and [(x["sku"], x["unit_cost"]) for x in r.json["lines"]] == [
        ("A100", "120.00"), ("B200", None)]
    r = api.put("/org-units/S1/stock-list", as_="admin", content_type="multipart/form-data",
                data=xlsx_file([("sku", "name", "unit_cost"), (1001, "茶杯", 9.5), ("C300", "手套", None)]))
    assert r.status_code == 200, r.json
    assert [x["sku"] for x in r.json["lines"]] == ["1001", "C300"]  # replaced whole; a numeric SKU stays a code
    bad = api.put("/org-units/S1/stock-list", as_="sm1", content_type="multipart/form-data",
                  data=csv_file("sku,name,unit_cost\nA100,羊毛衫,-1\nB200,围巾,1\nB200,围巾,2\n", "stock.csv"))
    assert bad.status_code == 422 and set(bad.json["errors"]) == {"line 2", "line 4"}  # a bad cost, listed twice
    assert stock.stock_list(org.unit_by_code("S1")).skus == ["1001", "C300"]  # nothing of it written
    wrong = api.put("/org-units/S1/stock-list", as_="sm1", content_type="multipart/form-data",
                    data={"file": (io.BytesIO(b"not a workbook"), "stock.xlsx")})
    assert wrong.status_code == 422 and "file" in wrong.json["errors"]
    assert api.put("/org-units/S1/stock-list", as_="a1", content_type="multipart/form-data",
                   data=csv_file("sku\nA1\n", "s.csv")).status_code == 403
    assert api.put("/org-units/S1/stock-list", as_="sm3", content_type="multipart/form-data",
                   data=csv_file("sku\nA1\n", "s.csv")).status_code == 404
    assert api.put("/org-units/EAST/stock-list", as_="admin", content_type="multipart/form-data",
                   data=csv_file("sku\nA1\n", "s.csv")).status_code == 422  # a region keeps no stock list
    kept = api.put("/org-units/S1/stock-list", as_="sm1", content_type="multipart/form-data",
                   data=csv_file("sku\nA1\n", "s.csv"))
    assert [x["sku"] for x in kept.json["lines"]] == ["A1"]
