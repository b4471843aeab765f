# Statistics of the sensor readings fetched by the previous step (context['fetch-readings']):
# a list of numbers, or of objects with a numeric `value`.
import statistics

readings = context["fetch-readings"]
if isinstance(readings, dict):
    readings = readings.get("readings", [])
values = [r["value"] if isinstance(r, dict) else r for r in readings]
values = [float(v) for v in values if v is not None]

if values:
    result = {
        "average": round(statistics.mean(values), 3),
        "min": min(values),
        "max": max(values),
        "count": len(values),
    }
else:
    result = {"average": None, "min": None, "max": None, "count": 0}
