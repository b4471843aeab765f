import datetime

values = {"nan": {"v": float("nan")}, "set": {1, 2}, "date": datetime.date(2026, 1, 1)}
result = values[context["kind"]]
